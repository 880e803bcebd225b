//! When a certificate is renewed, and Go duration strings as cert-manager's API writes them.
//!
//! Arithmetic is in whole seconds, so it holds for a 90-day certificate, a 160-hour one and a
//! test profile of a few minutes alike.

use jiff::{SignedDuration, Timestamp};

/// The renewal settings of a Certificate, already parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenewalPolicy {
    pub renew_before: Option<SignedDuration>,
    pub renew_before_percentage: Option<i32>,
}

/// cert-manager's rule: `renewBefore` if it is shorter than the lifetime, else
/// `renewBeforePercentage` of the lifetime, else 2/3 of the way through the lifetime. The result
/// is truncated to whole seconds.
pub fn renewal_time(
    not_before: Timestamp,
    not_after: Timestamp,
    policy: RenewalPolicy,
) -> Timestamp {
    let lifetime = not_after.duration_since(not_before);
    let before = match (policy.renew_before, policy.renew_before_percentage) {
        (Some(before), _) if before < lifetime => before,
        (_, Some(pct)) if (1..100).contains(&pct) => {
            SignedDuration::from_secs(lifetime.as_secs() * i64::from(pct) / 100)
        }
        _ => SignedDuration::from_secs(lifetime.as_secs() / 3),
    };
    let at = not_after.as_second() - before.as_secs();
    Timestamp::from_second(at).unwrap_or(not_before)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a duration: use a number with a unit, such as 90m, 2160h or 1h30m")]
pub struct DurationError(pub String);

/// Parses Go's `time.ParseDuration` format (`2160h0m0s`, `1.5h`, `300ms`), which is what
/// cert-manager's `metav1.Duration` fields hold. No maintained crate parses exactly this format
/// (humantime's grammar differs), so it is written here.
pub fn parse_go_duration(text: &str) -> Result<SignedDuration, DurationError> {
    let err = || DurationError(text.to_owned());
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut nanos: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(err());
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(err)?;
        let mut place = scale;
        for digit in frac.chars() {
            place /= 10;
            value += i128::from(digit.to_digit(10).ok_or_else(err)?) * place;
        }
        nanos = nanos.checked_add(value).ok_or_else(err)?;
        rest = tail;
    }
    let nanos = if negative { -nanos } else { nanos };
    let secs = i64::try_from(nanos / 1_000_000_000).map_err(|_| err())?;
    Ok(SignedDuration::new(secs, (nanos % 1_000_000_000) as i32))
}

/// Go's `time.Duration.String()`, which is how a duration read through cert-manager's Go types
/// is written back: `2160h0m0s`, `1h30m0s`, `5m0s`, `45s`, `1.5s`, `300ms`, `0s`.
pub fn format_go_duration(duration: SignedDuration) -> String {
    let negative = duration.is_negative();
    let total = duration.as_nanos().unsigned_abs();
    let sign = if negative { "-" } else { "" };
    if total == 0 {
        return "0s".into();
    }
    let fraction = |value: u128, unit: u128| -> String {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.to_string().len() - 1;
            let frac = format!("{rest:0digits$}");
            format!("{whole}.{}", frac.trim_end_matches('0'))
        }
    };
    if total < 1_000_000_000 {
        let (unit, suffix) = if total < 1_000 {
            (1, "ns")
        } else if total < 1_000_000 {
            (1_000, "µs")
        } else {
            (1_000_000, "ms")
        };
        return format!("{sign}{}{suffix}", fraction(total, unit));
    }
    let hours = total / 3_600_000_000_000;
    let minutes = (total / 60_000_000_000) % 60;
    let seconds = fraction(total % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("2160h0m0s").unwrap(),
            SignedDuration::from_hours(2160)
        );
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            SignedDuration::from_mins(90)
        );
        assert_eq!(
            parse_go_duration("300ms").unwrap(),
            SignedDuration::from_millis(300)
        );
        assert_eq!(parse_go_duration("0").unwrap(), SignedDuration::ZERO);
        assert_eq!(
            parse_go_duration("-5m").unwrap(),
            SignedDuration::from_mins(-5)
        );
        for bad in ["", "h", "5", "5d", "1h 30m", "abc", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_duration_strings() {
        for (text, want) in [
            ("2160h", "2160h0m0s"),
            ("90m", "1h30m0s"),
            ("5m", "5m0s"),
            ("45s", "45s"),
            ("1.5s", "1.5s"),
            ("300ms", "300ms"),
            ("0", "0s"),
            ("-5m", "-5m0s"),
            ("1h0m30.25s", "1h0m30.25s"),
            ("1500us", "1.5ms"),
        ] {
            assert_eq!(
                format_go_duration(parse_go_duration(text).unwrap()),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn default_is_two_thirds_of_the_lifetime() {
        let nb = ts("2026-01-01T00:00:00Z");
        let na = ts("2026-03-31T00:00:00Z"); // 89 days
        let at = renewal_time(nb, na, RenewalPolicy::default());
        assert_eq!(
            na.duration_since(at),
            SignedDuration::from_secs(89 * 86400 / 3)
        );
    }

    #[test]
    fn short_lived_certificates_in_seconds() {
        // 160-hour certificate: renew after 106h40m.
        let nb = ts("2026-01-01T00:00:00Z");
        let na = nb + SignedDuration::from_hours(160);
        assert_eq!(
            renewal_time(nb, na, RenewalPolicy::default()),
            nb + SignedDuration::from_secs(384_000)
        );
        // Ten-minute test certificate: renew after 400 s.
        let na = nb + SignedDuration::from_secs(600);
        assert_eq!(
            renewal_time(nb, na, RenewalPolicy::default()),
            nb + SignedDuration::from_secs(400)
        );
    }

    #[test]
    fn renew_before_and_percentage() {
        let nb = ts("2026-01-01T00:00:00Z");
        let na = nb + SignedDuration::from_hours(100);
        let before = RenewalPolicy {
            renew_before: Some(SignedDuration::from_hours(10)),
            ..Default::default()
        };
        assert_eq!(
            renewal_time(nb, na, before),
            na - SignedDuration::from_hours(10)
        );
        // renewBefore longer than the lifetime falls back to the default.
        let too_long = RenewalPolicy {
            renew_before: Some(SignedDuration::from_hours(200)),
            ..Default::default()
        };
        assert_eq!(
            renewal_time(nb, na, too_long),
            na - SignedDuration::from_secs(100 * 3600 / 3)
        );
        let pct = RenewalPolicy {
            renew_before_percentage: Some(25),
            ..Default::default()
        };
        assert_eq!(
            renewal_time(nb, na, pct),
            na - SignedDuration::from_hours(25)
        );
    }
}
