//! A minimal DER writer and reader for the parts of CSRs and certificates that certsmith builds
//! itself.
//!
//! rcgen 0.14 keeps a subject as a map from attribute type to one value, so it cannot write two
//! `O` or `OU` values, a multi-valued RDN, or copy an issuer's name byte for byte — all of which
//! cert-manager-compatible subjects and CA chains need. certsmith therefore encodes names,
//! extensions, the PKCS#10 request and the TBSCertificate here and uses rcgen for what it is good
//! at: key generation and signing.

use jiff::Timestamp;

pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTF8_STRING: u8 = 0x0c;
pub(crate) const PRINTABLE_STRING: u8 = 0x13;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;

/// One tag-length-value.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded elements.
pub(crate) fn seq<I, E>(elements: I) -> Vec<u8>
where
    I: IntoIterator<Item = E>,
    E: AsRef<[u8]>,
{
    tlv(SEQUENCE, &concat(elements))
}

/// A SET OF: DER wants the encodings in ascending order.
pub(crate) fn set_of(mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    tlv(SET, &concat(elements))
}

pub(crate) fn concat<I, E>(elements: I) -> Vec<u8>
where
    I: IntoIterator<Item = E>,
    E: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for element in elements {
        out.extend_from_slice(element.as_ref());
    }
    out
}

/// Context-specific, constructed: `[n] EXPLICIT`, or `[n] IMPLICIT` of a constructed type.
pub(crate) fn context_constructed(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// Context-specific, primitive: `[n] IMPLICIT` of a primitive type.
pub(crate) fn context_primitive(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0x80 | n, content)
}

pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        [a] => (a * 40, &[][..]),
        [] => (0, &[][..]),
    };
    push_base128(&mut body, first);
    for arc in rest {
        push_base128(&mut body, *arc);
    }
    tlv(OID, &body)
}

fn push_base128(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = vec![(value & 0x7f) as u8];
    value >>= 7;
    while value > 0 {
        digits.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    digits.reverse();
    out.extend_from_slice(&digits);
}

/// Parses a dotted object identifier such as `2.5.4.3`.
pub(crate) fn parse_oid(dotted: &str) -> Option<Vec<u64>> {
    let arcs: Option<Vec<u64>> = dotted.split('.').map(|a| a.parse().ok()).collect();
    let arcs = arcs?;
    (arcs.len() >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] < 40)).then_some(arcs)
}

/// Dotted form of a DER-encoded OID's content octets.
pub(crate) fn oid_to_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, byte) in content.iter().enumerate() {
        value = value.checked_mul(128)? | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i == content.len() - 1 {
            return None;
        }
    }
    (!arcs.is_empty()).then(|| {
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let mut body = magnitude[skip..].to_vec();
    if body.is_empty() || body[0] & 0x80 != 0 {
        body.insert(0, 0);
    }
    tlv(INTEGER, &body)
}

pub(crate) fn small_integer(value: u64) -> Vec<u8> {
    unsigned_integer(&value.to_be_bytes())
}

pub(crate) fn boolean(value: bool) -> Vec<u8> {
    tlv(BOOLEAN, &[if value { 0xff } else { 0 }])
}

pub(crate) fn null() -> Vec<u8> {
    tlv(NULL, &[])
}

pub(crate) fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(OCTET_STRING, content)
}

/// A BIT STRING of whole bytes.
pub(crate) fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(content.len() + 1);
    body.push(0);
    body.extend_from_slice(content);
    tlv(BIT_STRING, &body)
}

/// A named-bit BIT STRING (such as KeyUsage) with DER's rule of no trailing zero bits. Bit 0 is
/// the most significant bit of the first byte.
pub(crate) fn named_bits(bits: u16) -> Vec<u8> {
    if bits == 0 {
        return tlv(BIT_STRING, &[0]);
    }
    // Bit i of `bits` is named bit i; map to big-endian position (bit 0 → 0x8000).
    let mut value: u16 = 0;
    for i in 0..16 {
        if bits & (1 << i) != 0 {
            value |= 0x8000 >> i;
        }
    }
    let used = 16 - value.trailing_zeros() as usize;
    let bytes = value.to_be_bytes();
    let len = used.div_ceil(8);
    let unused = (len * 8 - used) as u8;
    let mut body = vec![unused];
    body.extend_from_slice(&bytes[..len]);
    tlv(BIT_STRING, &body)
}

pub(crate) fn utf8_string(s: &str) -> Vec<u8> {
    tlv(UTF8_STRING, s.as_bytes())
}

/// A directory string as Go's `encoding/asn1` writes one (which is what cert-manager's subjects
/// are): PrintableString when every character is printable (Go also admits `*` and `&`), else
/// UTF8String.
pub(crate) fn directory_string(s: &str) -> Vec<u8> {
    if s.bytes().all(is_go_printable) {
        tlv(PRINTABLE_STRING, s.as_bytes())
    } else {
        utf8_string(s)
    }
}

fn is_go_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b' ' | b'\''
                | b'('
                | b')'
                | b'+'
                | b','
                | b'-'
                | b'.'
                | b'/'
                | b':'
                | b'='
                | b'?'
                | b'*'
                | b'&'
        )
}

/// UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5).
pub(crate) fn time(at: Timestamp) -> Vec<u8> {
    let dt = at.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let year = dt.year();
    if (1950..2050).contains(&year) {
        let text = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            year % 100,
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        tlv(UTC_TIME, text.as_bytes())
    } else {
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            year,
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        );
        tlv(GENERALIZED_TIME, text.as_bytes())
    }
}

/// An X.509v3 Extension.
pub(crate) fn extension(oid_arcs: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![oid(oid_arcs)];
    if critical {
        parts.push(boolean(true));
    }
    parts.push(octet_string(value));
    seq(parts)
}

/// One element read from DER input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole encoding, header included.
    pub raw: &'a [u8],
}

/// Reads one element; returns it and the rest of the input.
pub(crate) fn read(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers are not used here
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let element = Element {
        tag,
        content: &rest[..len],
        raw: &input[..header + len],
    };
    Some((element, &rest[len..]))
}

/// Every element of a constructed value's content.
pub(crate) fn read_all(mut input: &[u8]) -> Option<Vec<Element<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (element, rest) = read(input)?;
        out.push(element);
        input = rest;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(small_integer(0), [0x02, 1, 0]);
        assert_eq!(small_integer(2), [0x02, 1, 2]);
        assert_eq!(unsigned_integer(&[0x80]), [0x02, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0, 0x12]), [0x02, 1, 0x12]);
    }

    #[test]
    fn oids_round_trip() {
        // 1.2.840.113549.1.1.11 (sha256WithRSAEncryption)
        let encoded = oid(&[1, 2, 840, 113549, 1, 1, 11]);
        assert_eq!(
            encoded,
            [
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b
            ]
        );
        assert_eq!(
            oid_to_string(&encoded[2..]).unwrap(),
            "1.2.840.113549.1.1.11"
        );
        assert_eq!(parse_oid("2.5.4.3").unwrap(), [2, 5, 4, 3]);
        assert!(parse_oid("2").is_none());
        assert!(parse_oid("1.40").is_none());
        assert!(parse_oid("a.b").is_none());
    }

    #[test]
    fn key_usage_bits_drop_trailing_zeros() {
        // digitalSignature (0) + keyEncipherment (2): 0b101 → 0xa0 with 5 unused bits.
        assert_eq!(named_bits(0b101), [0x03, 0x02, 0x05, 0xa0]);
        // keyCertSign (5) alone: 0x04 with 2 unused bits.
        assert_eq!(named_bits(1 << 5), [0x03, 0x02, 0x02, 0x04]);
        // decipherOnly (8): needs a second byte.
        assert_eq!(named_bits(1 << 8), [0x03, 0x03, 0x07, 0x00, 0x80]);
    }

    #[test]
    fn times_switch_to_generalized_after_2049() {
        let t: Timestamp = "2026-03-04T05:06:07Z".parse().unwrap();
        assert_eq!(time(t), tlv(UTC_TIME, b"260304050607Z"));
        let t: Timestamp = "2051-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(time(t), tlv(GENERALIZED_TIME, b"20510101000000Z"));
    }

    #[test]
    fn strings_follow_go() {
        assert_eq!(directory_string("Acme Inc.")[0], PRINTABLE_STRING);
        assert_eq!(directory_string("*.example.com")[0], PRINTABLE_STRING);
        assert_eq!(directory_string("a_b")[0], UTF8_STRING);
        assert_eq!(directory_string("Zürich")[0], UTF8_STRING);
    }

    #[test]
    fn reader_reads_what_the_writer_wrote() {
        let encoded = seq([small_integer(5), octet_string(&[0; 300])]);
        let (outer, rest) = read(&encoded).unwrap();
        assert!(rest.is_empty());
        assert_eq!(outer.tag, SEQUENCE);
        let inner = read_all(outer.content).unwrap();
        assert_eq!(inner.len(), 2);
        assert_eq!(inner[0].content, [5]);
        assert_eq!(inner[1].content.len(), 300);
        assert!(read(&[0x30, 0x05, 1]).is_none());
    }
}
