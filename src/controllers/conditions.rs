//! Setting a condition the way Kubernetes API conventions want it: one entry per type, and
//! `lastTransitionTime` moves only when the status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::certificate::CertificateCondition;
use crate::api::certificate_request::CertificateRequestCondition;
use crate::api::issuer::IssuerCondition;
use crate::api::meta::ConditionStatus;

/// The fields every condition type of the API shares.
pub trait Condition: Clone {
    fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: &str,
        observed_generation: Option<i64>,
    ) -> Self;
    fn type_(&self) -> &str;
    fn status(&self) -> ConditionStatus;
    fn last_transition_time(&self) -> Option<&Time>;
    fn set_last_transition_time(&mut self, time: Option<Time>);
}

macro_rules! impl_condition {
    ($ty:ty $(, $generation:ident)?) => {
        impl Condition for $ty {
            fn new(type_: &str, status: ConditionStatus, reason: &str, message: &str, observed_generation: Option<i64>) -> Self {
                #[allow(unused_mut)]
                let mut condition = Self {
                    type_: type_.into(),
                    status,
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                    ..Default::default()
                };
                $( condition.$generation = observed_generation; )?
                let _ = observed_generation;
                condition
            }
            fn type_(&self) -> &str {
                &self.type_
            }
            fn status(&self) -> ConditionStatus {
                self.status
            }
            fn last_transition_time(&self) -> Option<&Time> {
                self.last_transition_time.as_ref()
            }
            fn set_last_transition_time(&mut self, time: Option<Time>) {
                self.last_transition_time = time;
            }
        }
    };
}

impl_condition!(CertificateCondition, observed_generation);
impl_condition!(IssuerCondition, observed_generation);
impl_condition!(CertificateRequestCondition);

/// Replaces the condition of the same type in `conditions` (or appends it). The transition
/// time is kept when the status did not change, else set to `now`.
pub fn set<C: Condition>(conditions: &mut Vec<C>, mut condition: C, now: Time) {
    match conditions
        .iter_mut()
        .find(|c| c.type_() == condition.type_())
    {
        Some(existing) => {
            let time = if existing.status() == condition.status() {
                existing.last_transition_time().cloned().or(Some(now))
            } else {
                Some(now)
            };
            condition.set_last_transition_time(time);
            *existing = condition;
        }
        None => {
            condition.set_last_transition_time(Some(now));
            conditions.push(condition);
        }
    }
}

/// Removes the condition of that type, if present.
pub fn remove<C: Condition>(conditions: &mut Vec<C>, type_: &str) {
    conditions.retain(|c| c.type_() != type_);
}

/// The condition of that type, if present.
pub fn find<'a, C: Condition>(conditions: &'a [C], type_: &str) -> Option<&'a C> {
    conditions.iter().find(|c| c.type_() == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let mut list: Vec<CertificateCondition> = vec![];
        let t1 = time("2026-01-01T00:00:00Z");
        let t2 = time("2026-01-02T00:00:00Z");
        set(
            &mut list,
            CertificateCondition::new(
                "Ready",
                ConditionStatus::False,
                "DoesNotExist",
                "m",
                Some(1),
            ),
            t1.clone(),
        );
        set(
            &mut list,
            CertificateCondition::new("Ready", ConditionStatus::False, "Pending", "m2", Some(2)),
            t2.clone(),
        );
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].last_transition_time, Some(t1));
        assert_eq!(list[0].reason.as_deref(), Some("Pending"));
        assert_eq!(list[0].observed_generation, Some(2));
        set(
            &mut list,
            CertificateCondition::new("Ready", ConditionStatus::True, "Ready", "ok", Some(2)),
            t2.clone(),
        );
        assert_eq!(list[0].last_transition_time, Some(t2));
        set(
            &mut list,
            CertificateCondition::new("Issuing", ConditionStatus::True, "Renewing", "r", Some(2)),
            time("2026-01-03T00:00:00Z"),
        );
        assert_eq!(list.len(), 2);
        remove(&mut list, "Issuing");
        assert!(find(&list, "Issuing").is_none());
    }
}
