//! Challenge: present the solver, check it, accept the challenge at the ACME server, wait for
//! the authorization, clean up.
//!
//! * A finalizer (`acme.cert-manager.io/finalizer`, replacing the legacy one) keeps a Challenge
//!   until its solver objects are removed.
//! * HTTP-01: [`crate::solvers::http01::present`], then the self-check, retried every
//!   `self_check_retry` with the reason "Waiting for HTTP-01 challenge propagation: …" until it
//!   passes (or `waitInsteadOfSelfCheck` elapses); then the challenge is accepted once and
//!   `state: processing` records it, so a restart polls instead of accepting blindly (an accept
//!   that got lost is noticed: the server still shows the challenge `pending`).
//! * The authorization is polled with a short backoff (honouring Retry-After) until it is
//!   `valid` ("Successfully authorized domain") or fails ("Error accepting authorization: …").
//! * A final Challenge has its solver cleaned up; a deleted one too, then loses its finalizer.
//! * DNS-01 ([`crate::solvers::dns01`]): the TXT value is added through the provider (RFC 2136,
//!   a cert-manager webhook, Cloudflare or Route53)
//!   at `_acme-challenge.<domain>` (CNAMEs followed with `cnameStrategy: Follow`) once, then the
//!   propagation check runs every `--dns01-check-retry-period` ("Waiting for DNS-01 challenge
//!   propagation: …") until the zone's nameservers serve it, and the challenge is accepted at
//!   once (no fixed sleep). Cleanup removes only that value.
//! * DNS-01 providers not implemented yet: such Challenges stay `pending` with a reason and a
//!   Warning Event, and are looked at again slowly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::backoff::Backoff;
use super::issuer::{LookupError, acme_issuer};
use super::{Context, FIELD_MANAGER, KubeError, Shutdown, kube_error};
use crate::acme::AcmeError;
use crate::api::acme::AcmeState;
use crate::api::challenge::{ChallengeStatus, ChallengeType};
use crate::api::{Challenge, Order};
use crate::solvers::dns01::{self, Dns01Error};
use crate::solvers::http01::{self, Http01Error, SelfCheck};

pub mod plan;

use plan::{Next, Outcome};

/// How often a Challenge certsmith cannot solve yet is looked at again.
const UNSUPPORTED_RESYNC: Duration = Duration::from_secs(300);
/// The shortest wait before presenting again after a refused or misconfigured present.
const PRESENT_RETRY_MIN: Duration = Duration::from_secs(5);

/// Why presenting a solver failed.
#[derive(Debug, thiserror::Error)]
enum SolverError {
    #[error(transparent)]
    Http01(Http01Error),
    #[error(transparent)]
    Dns01(Dns01Error),
}

impl SolverError {
    fn is_transient(&self) -> bool {
        match self {
            SolverError::Http01(e) => e.is_transient(),
            SolverError::Dns01(e) => e.is_transient(),
        }
    }
}

impl From<SolverError> for Error {
    fn from(error: SolverError) -> Error {
        match error {
            SolverError::Http01(e) => Error::Http01(e),
            SolverError::Dns01(e) => Error::Dns01(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{action}: {source}")]
    Acme { action: String, source: AcmeError },
    #[error(transparent)]
    Issuer(#[from] LookupError),
    #[error(transparent)]
    Http01(#[from] Http01Error),
    #[error(transparent)]
    Dns01(#[from] Dns01Error),
    #[error("{0}")]
    Order(String),
}

impl Error {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Acme { source, .. } => source.retry_after(),
            Error::Issuer(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// The state the Challenge reconcilers share.
pub struct ChallengeController {
    ctx: Arc<Context>,
    /// Reconciles that failed, by Challenge uid.
    errors: Backoff,
    /// Polls of accepted challenges, by Challenge uid.
    polls: Backoff,
    /// The status last written, by Challenge uid: the watch cache may lag behind it, and a
    /// stale status must not make a challenge be presented or accepted again.
    written: Mutex<HashMap<String, ChallengeStatus>>,
}

impl ChallengeController {
    pub fn new(ctx: Arc<Context>) -> Arc<ChallengeController> {
        Arc::new(ChallengeController {
            ctx,
            errors: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            polls: Backoff::new(Duration::from_millis(250), Duration::from_secs(10)),
            written: Mutex::new(HashMap::new()),
        })
    }

    fn remember(&self, challenge: &Challenge, status: &ChallengeStatus) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.len() >= MAX_REMEMBERED {
            written.clear();
        }
        written.insert(challenge.uid().unwrap_or_default(), status.clone());
    }

    fn forget(&self, uid: &str) {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
        self.errors.reset(uid);
        self.polls.reset(uid);
    }

    /// The Challenge with the status this process last wrote (the watch cache may be older).
    fn latest(&self, challenge: &Challenge) -> Challenge {
        let mut challenge = challenge.clone();
        let uid = challenge.uid().unwrap_or_default();
        if let Some(status) = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
        {
            challenge.status = Some(status.clone());
        }
        challenge
    }
}

/// How many written statuses are remembered at most.
const MAX_REMEMBERED: usize = 10_000;

/// Runs the Challenge controller until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let api: Api<Challenge> = match ctx.config.namespace.as_deref() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let controller = ChallengeController::new(ctx);
    Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(4))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, controller)
        .for_each(|result| async move {
            crate::runtime::metrics::record_sync("challenges", result.is_ok());
            match result {
                Ok((object, _)) => tracing::trace!(%object, "reconciled"),
                Err(controller::Error::ReconcilerFailed(_, _)) => {}
                Err(error) => tracing::debug!(%error, "challenge controller"),
            }
        })
        .await;
}

fn error_policy(
    challenge: Arc<Challenge>,
    error: &Error,
    controller: Arc<ChallengeController>,
) -> Action {
    let uid = challenge.uid().unwrap_or_default();
    let delay = controller.errors.record(&uid, 0, error.retry_after());
    tracing::warn!(
        namespace = %challenge.namespace().unwrap_or_default(), name = %challenge.name_any(),
        dns_name = %challenge.spec.dns_name, %error, retry_in_ms = delay.as_millis() as u64,
        "challenge reconcile failed"
    );
    Action::requeue(delay)
}

fn api(ctx: &Context, challenge: &Challenge) -> Api<Challenge> {
    Api::namespaced(
        ctx.client.clone(),
        &challenge.namespace().unwrap_or_default(),
    )
}

/// Writes the status when it changed; returns the Challenge as written.
async fn write_status(
    controller: &ChallengeController,
    challenge: &mut Challenge,
    status: ChallengeStatus,
) -> Result<(), Error> {
    let ctx = &controller.ctx;
    if challenge.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let name = challenge.name_any();
    let body = serde_json::json!({
        "apiVersion": Challenge::api_version(&()),
        "kind": Challenge::kind(&()),
        "status": status,
    });
    api(ctx, challenge)
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(kube_error(format!(
            "writing the status of Challenge {name}"
        )))?;
    controller.remember(challenge, &status);
    challenge.status = Some(status);
    Ok(())
}

/// Changes the finalizers with `change` (`None`: nothing to change), guarded by the resource
/// version; on a conflict the Challenge is read again and the change retried. Returns the
/// Challenge as updated, or `None` when it is gone.
async fn update_finalizers(
    ctx: &Context,
    challenge: &Challenge,
    change: impl Fn(&[String]) -> Option<Vec<String>>,
) -> Result<Option<Challenge>, Error> {
    let name = challenge.name_any();
    let api = api(ctx, challenge);
    let mut current = challenge.clone();
    for attempt in 1..=3 {
        let Some(finalizers) = change(current.finalizers()) else {
            return Ok(Some(current));
        };
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": current.resource_version(),
                "finalizers": finalizers,
            }
        });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => return Ok(Some(updated)),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 3 => {
                match api
                    .get_opt(&name)
                    .await
                    .map_err(kube_error(format!("reading Challenge {name}")))?
                {
                    Some(fresh) => current = fresh,
                    None => return Ok(None),
                }
            }
            Err(e) => {
                return Err(
                    kube_error(format!("updating the finalizers of Challenge {name}"))(e).into(),
                );
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// Removes the solver objects (a challenge type without solver objects has nothing to remove).
async fn clean_up(ctx: &Context, challenge: &Challenge) -> Result<(), Error> {
    if challenge.spec.type_ == ChallengeType::Dns01 {
        return clean_up_dns01(ctx, challenge).await;
    }
    match http01::cleanup(&ctx.client, challenge).await {
        Ok(()) => Ok(()),
        Err(Http01Error::NotHttp01 | Http01Error::Unsupported(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn is_cluster_issuer(challenge: &Challenge) -> bool {
    challenge.spec.issuer_ref.kind.as_deref() == Some("ClusterIssuer")
}

/// The namespace of the Secrets a Challenge's solver refers to: the Challenge's own, or the
/// cluster resource namespace for a ClusterIssuer.
fn secret_namespace(ctx: &Context, challenge: &Challenge) -> String {
    if is_cluster_issuer(challenge) {
        ctx.config.cluster_resource_namespace.clone()
    } else {
        challenge.namespace().unwrap_or_default()
    }
}

/// Adds the DNS-01 TXT value through the Challenge's provider.
async fn present_dns01(ctx: &Context, challenge: &Challenge) -> Result<(), Dns01Error> {
    let target = dns01::target(challenge, &ctx.config.dns01).await?;
    let provider = dns01::provider(
        &ctx.client,
        challenge,
        &secret_namespace(ctx, challenge),
        is_cluster_issuer(challenge),
    )
    .await?;
    provider
        .present(&target.fqdn, &target.zone, &challenge.spec.key)
        .await?;
    tracing::info!(
        namespace = %challenge.namespace().unwrap_or_default(), name = %challenge.name_any(),
        fqdn = %target.fqdn, zone = %target.zone, "presented the DNS-01 TXT record"
    );
    Ok(())
}

/// Removes the DNS-01 TXT value (only it). A Challenge that was never presented has nothing to
/// remove; a configuration that cannot work (the provider or its Secret is gone) must not keep
/// the Challenge from being deleted, so only transient failures are retried.
async fn clean_up_dns01(ctx: &Context, challenge: &Challenge) -> Result<(), Error> {
    if !challenge.is_presented() {
        return Ok(());
    }
    let result = async {
        let target = dns01::target(challenge, &ctx.config.dns01).await?;
        let provider = dns01::provider(
            &ctx.client,
            challenge,
            &secret_namespace(ctx, challenge),
            is_cluster_issuer(challenge),
        )
        .await?;
        provider
            .cleanup(&target.fqdn, &target.zone, &challenge.spec.key)
            .await?;
        Ok::<_, Dns01Error>(target)
    }
    .await;
    let namespace = challenge.namespace().unwrap_or_default();
    let name = challenge.name_any();
    match result {
        Ok(target) => {
            tracing::info!(%namespace, %name, fqdn = %target.fqdn, "removed the DNS-01 TXT record");
            Ok(())
        }
        Err(error) if error.is_transient() => Err(error.into()),
        Err(error) => {
            tracing::warn!(%namespace, %name, %error, "could not remove the DNS-01 TXT record; giving up");
            Ok(())
        }
    }
}

/// The DNS-01 propagation check: `Ok(Err(why))` while the value is not visible yet.
async fn check_dns01(
    ctx: &Context,
    challenge: &Challenge,
) -> Result<Result<(), String>, Dns01Error> {
    let target = dns01::target(challenge, &ctx.config.dns01).await?;
    dns01::propagation::check(
        &target.fqdn,
        &target.zone,
        &challenge.spec.key,
        &ctx.config.dns01,
    )
    .await
}

/// The URL of the ACME order the Challenge belongs to, from its owning Order.
async fn order_url(ctx: &Context, challenge: &Challenge) -> Result<String, Error> {
    let owner = challenge
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == "Order")
        .ok_or_else(|| Error::Order("the Challenge has no owning Order".to_owned()))?;
    let namespace = challenge.namespace().unwrap_or_default();
    let orders: Api<Order> = Api::namespaced(ctx.client.clone(), &namespace);
    let order = orders
        .get_opt(&owner.name)
        .await
        .map_err(kube_error(format!(
            "reading Order {namespace}/{}",
            owner.name
        )))?
        .ok_or_else(|| {
            Error::Order(format!(
                "the owning Order {namespace}/{} does not exist",
                owner.name
            ))
        })?;
    order
        .status
        .and_then(|s| s.url)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::Order(format!(
                "the Order {namespace}/{} has no ACME order URL yet",
                owner.name
            ))
        })
}

async fn reconcile(
    challenge: Arc<Challenge>,
    controller: Arc<ChallengeController>,
) -> Result<Action, Error> {
    let ctx = controller.ctx.clone();
    let uid = challenge.uid().unwrap_or_default();
    let namespace = challenge.namespace().unwrap_or_default();
    let name = challenge.name_any();
    let dns_name = challenge.spec.dns_name.clone();
    let mut challenge = controller.latest(&challenge);
    loop {
        let next = plan::next(&challenge);
        tracing::debug!(%namespace, %name, %dns_name, ?next, "challenge step");
        return match next {
            Next::Delete => {
                if plan::finalizers_without_ours(challenge.finalizers()).is_some() {
                    clean_up(&ctx, &challenge).await?;
                    update_finalizers(&ctx, &challenge, plan::finalizers_without_ours).await?;
                    tracing::info!(%namespace, %name, %dns_name, "cleaned up the deleted challenge");
                }
                controller.forget(&uid);
                Ok(Action::await_change())
            }
            Next::AddFinalizer => {
                let Some(updated) =
                    update_finalizers(&ctx, &challenge, plan::finalizers_with_ours).await?
                else {
                    return Ok(Action::await_change());
                };
                // Carry on with the updated object (and the status this process knows).
                challenge = controller.latest(&updated);
                continue;
            }
            Next::Idle => {
                controller.errors.reset(&uid);
                controller.polls.reset(&uid);
                Ok(Action::await_change())
            }
            Next::CleanUp => {
                clean_up(&ctx, &challenge).await?;
                let status = plan::updated(&challenge, |s| {
                    s.presented = Some(false);
                    s.processing = Some(false);
                });
                write_status(&controller, &mut challenge, status).await?;
                controller.errors.reset(&uid);
                controller.polls.reset(&uid);
                Ok(Action::await_change())
            }
            Next::NotImplemented => {
                let reason = plan::dns01_not_implemented(&challenge);
                let changed = challenge.status.as_ref().and_then(|s| s.reason.as_deref())
                    != Some(reason.as_str());
                let status = plan::updated(&challenge, |s| {
                    s.processing = Some(true);
                    s.state = Some(AcmeState::Pending);
                    s.reason = Some(reason.clone());
                });
                write_status(&controller, &mut challenge, status).await?;
                if changed {
                    tracing::warn!(%namespace, %name, %dns_name, %reason, "cannot solve the challenge");
                    ctx.event(&challenge, EventType::Warning, "PresentError", reason)
                        .await;
                }
                controller.errors.reset(&uid);
                Ok(Action::requeue(UNSUPPORTED_RESYNC))
            }
            Next::Present => present_and_accept(&controller, &mut challenge).await,
            Next::Poll => poll(&controller, &mut challenge).await,
        };
    }
}

async fn present_and_accept(
    controller: &ChallengeController,
    challenge: &mut Challenge,
) -> Result<Action, Error> {
    let ctx = &controller.ctx;
    let uid = challenge.uid().unwrap_or_default();
    let namespace = challenge.namespace().unwrap_or_default();
    let name = challenge.name_any();
    let dns_name = challenge.spec.dns_name.clone();
    let settings = &ctx.config.http01;
    let is_dns01 = challenge.spec.type_ == ChallengeType::Dns01;

    // Present (HTTP-01 again on every pass: it is idempotent and repairs solver objects that went
    // missing; DNS-01 once: the record stays until cleanup).
    let presented = if is_dns01 {
        if challenge.is_presented() {
            Ok(())
        } else {
            present_dns01(ctx, challenge)
                .await
                .map_err(SolverError::Dns01)
        }
    } else {
        http01::present(&ctx.client, challenge, settings)
            .await
            .map_err(SolverError::Http01)
    };
    if let Err(error) = presented {
        let reason = format!("Error presenting challenge: {error}");
        let changed =
            challenge.status.as_ref().and_then(|s| s.reason.as_deref()) != Some(reason.as_str());
        let status = plan::updated(challenge, |s| {
            s.processing = Some(true);
            s.state.get_or_insert(AcmeState::Pending);
            s.reason = Some(reason.clone());
        });
        write_status(controller, challenge, status).await?;
        if changed {
            ctx.event(&*challenge, EventType::Warning, "PresentError", reason)
                .await;
        }
        if error.is_transient() {
            return Err(error.into());
        }
        if is_dns01 {
            // A refused update or a wrong configuration: retried with backoff, no hot loop.
            let delay = controller
                .errors
                .record(&uid, 0, None)
                .max(PRESENT_RETRY_MIN);
            return Ok(Action::requeue(delay.min(UNSUPPORTED_RESYNC)));
        }
        controller.errors.reset(&uid);
        return Ok(Action::requeue(UNSUPPORTED_RESYNC));
    }
    if !challenge.is_presented() {
        let status = plan::updated(challenge, |s| {
            s.processing = Some(true);
            s.presented = Some(true);
            s.presented_at = Some(Time(jiff::Timestamp::now()));
            s.state.get_or_insert(AcmeState::Pending);
            s.reason = None;
        });
        write_status(controller, challenge, status).await?;
        let mechanism = challenge.spec.type_.as_str();
        tracing::info!(%namespace, %name, %dns_name, "presented the {mechanism} challenge");
        ctx.event(
            challenge,
            EventType::Normal,
            "Presented",
            format!("Presented challenge using {mechanism} challenge mechanism"),
        )
        .await;
    }

    // Ready to be validated?
    let presented_at = challenge
        .status
        .as_ref()
        .and_then(|s| s.presented_at.clone());
    let waiting = match plan::wait_instead_of_self_check(
        challenge,
        presented_at.as_ref(),
        jiff::Timestamp::now(),
    ) {
        Err(reason) => Some((reason, UNSUPPORTED_RESYNC)),
        Ok(Some(left)) if !left.is_zero() => Some((
            format!(
                "Waiting {}s before accepting the challenge (waitInsteadOfSelfCheck)",
                left.as_secs()
            ),
            left,
        )),
        Ok(Some(_)) => None,
        Ok(None) if is_dns01 => match check_dns01(ctx, challenge).await {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some((
                format!("Waiting for DNS-01 challenge propagation: {why}"),
                ctx.config.dns01.check_retry_period,
            )),
            Err(error) if error.is_transient() => {
                // Not a hot loop: the DNS servers did not answer; ask again after a retry period.
                Some((
                    format!("Waiting for DNS-01 challenge propagation: {error}"),
                    ctx.config.dns01.check_retry_period,
                ))
            }
            Err(error) => Some((
                format!("Waiting for DNS-01 challenge propagation: {error}"),
                UNSUPPORTED_RESYNC,
            )),
        },
        Ok(None) => match http01::self_check(challenge, settings).await {
            Ok(SelfCheck::Passed) => None,
            Ok(SelfCheck::Failed(why)) => Some((
                format!("Waiting for HTTP-01 challenge propagation: {why}"),
                ctx.config.self_check_retry,
            )),
            Err(error) if error.is_transient() => return Err(error.into()),
            Err(error) => Some((
                format!("Waiting for HTTP-01 challenge propagation: {error}"),
                UNSUPPORTED_RESYNC,
            )),
        },
    };
    if let Some((reason, retry)) = waiting {
        if challenge.status.as_ref().and_then(|s| s.reason.as_deref()) != Some(reason.as_str()) {
            tracing::debug!(%namespace, %name, %dns_name, %reason, "challenge not ready to be accepted");
        }
        let status = plan::updated(challenge, |s| s.reason = Some(reason));
        write_status(controller, challenge, status).await?;
        controller.errors.reset(&uid);
        return Ok(Action::requeue(retry));
    }

    // Accept it at the ACME server, once.
    let order_url = order_url(ctx, challenge).await?;
    let Some(issuer) = acme_issuer(ctx, &namespace, &challenge.spec.issuer_ref).await? else {
        return Ok(Action::await_change());
    };
    let acme_type = challenge.spec.type_.acme_type();
    match issuer
        .account
        .accept_challenge(&order_url, &challenge.spec.authorization_url, acme_type)
        .await
    {
        Ok(()) => {
            tracing::info!(%namespace, %name, %dns_name, %order_url, "accepted the challenge");
        }
        Err(error) if error.is_terminal() => {
            // Accepted before (e.g. before a restart), validated or failed already? Ask.
            let authorization = issuer
                .account
                .authorization(&order_url, &challenge.spec.authorization_url)
                .await;
            match authorization {
                Ok(authorization) if authorization.status.is_final() => {
                    return finish(
                        controller,
                        challenge,
                        plan::outcome(challenge, &authorization),
                    )
                    .await;
                }
                Ok(authorization)
                    if plan::outcome(challenge, &authorization) == Outcome::Processing =>
                {
                    tracing::info!(%namespace, %name, %dns_name, %order_url, "the challenge was accepted before");
                }
                _ => {
                    let reason = format!("Error accepting challenge: {error}");
                    let status = plan::finished(challenge, AcmeState::Errored, &reason);
                    write_status(controller, challenge, status).await?;
                    ctx.event(&*challenge, EventType::Warning, "Failed", reason)
                        .await;
                    return Ok(Action::requeue(Duration::from_millis(100)));
                }
            }
        }
        Err(error) => {
            return Err(Error::Acme {
                action: "accepting the challenge".to_owned(),
                source: error,
            });
        }
    }
    let status = plan::updated(challenge, |s| {
        s.state = Some(AcmeState::Processing);
        s.reason = Some(plan::REASON_WAITING_FOR_VALIDATION.to_owned());
    });
    write_status(controller, challenge, status).await?;
    controller.errors.reset(&uid);
    controller.polls.reset(&uid);
    let delay = controller.polls.record(&uid, 0, None);
    Ok(Action::requeue(delay))
}

async fn poll(
    controller: &ChallengeController,
    challenge: &mut Challenge,
) -> Result<Action, Error> {
    let ctx = &controller.ctx;
    let uid = challenge.uid().unwrap_or_default();
    let namespace = challenge.namespace().unwrap_or_default();
    let order_url = order_url(ctx, challenge).await?;
    let Some(issuer) = acme_issuer(ctx, &namespace, &challenge.spec.issuer_ref).await? else {
        return Ok(Action::await_change());
    };
    let authorization = match issuer
        .account
        .authorization(&order_url, &challenge.spec.authorization_url)
        .await
    {
        Ok(authorization) => authorization,
        Err(error) if error.is_terminal() => {
            let reason = format!("Error accepting authorization: {error}");
            return finish(
                controller,
                challenge,
                Outcome::Failed {
                    state: AcmeState::Errored,
                    reason,
                },
            )
            .await;
        }
        Err(error) => {
            return Err(Error::Acme {
                action: "reading the authorization".to_owned(),
                source: error,
            });
        }
    };
    match plan::outcome(challenge, &authorization) {
        Outcome::Processing => {
            controller.errors.reset(&uid);
            let delay = controller.polls.record(&uid, 0, authorization.retry_after);
            Ok(Action::requeue(delay))
        }
        Outcome::NotAccepted => {
            tracing::info!(
                namespace = %namespace, name = %challenge.name_any(), dns_name = %challenge.spec.dns_name,
                "the server has not seen the challenge accepted; accepting it again"
            );
            match issuer
                .account
                .accept_challenge(
                    &order_url,
                    &challenge.spec.authorization_url,
                    challenge.spec.type_.acme_type(),
                )
                .await
            {
                Ok(()) => {}
                // Refused because it is under way after all: keep polling.
                Err(error) if error.is_terminal() => {
                    tracing::debug!(%namespace, %error, "accepting again was refused");
                }
                Err(source) => {
                    return Err(Error::Acme {
                        action: "accepting the challenge".to_owned(),
                        source,
                    });
                }
            }
            controller.errors.reset(&uid);
            let delay = controller.polls.record(&uid, 0, authorization.retry_after);
            Ok(Action::requeue(delay))
        }
        outcome => finish(controller, challenge, outcome).await,
    }
}

/// Records a final outcome, with its Event, and cleans up the solver.
async fn finish(
    controller: &ChallengeController,
    challenge: &mut Challenge,
    outcome: Outcome,
) -> Result<Action, Error> {
    let ctx = &controller.ctx;
    let uid = challenge.uid().unwrap_or_default();
    let namespace = challenge.namespace().unwrap_or_default();
    let name = challenge.name_any();
    let dns_name = challenge.spec.dns_name.clone();
    let (state, reason, event_type, event_reason, note) = match outcome {
        Outcome::Valid => (
            AcmeState::Valid,
            plan::REASON_AUTHORIZED.to_owned(),
            EventType::Normal,
            "DomainVerified",
            format!(
                "Domain {:?} verified with {:?} validation",
                dns_name,
                challenge.spec.type_.as_str()
            ),
        ),
        Outcome::Failed { state, reason } => (
            state,
            reason.clone(),
            EventType::Warning,
            "Failed",
            format!("Accepting challenge authorization failed: {reason}"),
        ),
        Outcome::Processing | Outcome::NotAccepted => unreachable!("not final"),
    };
    tracing::info!(%namespace, %name, %dns_name, %state, %reason, "challenge finished");
    let status = plan::finished(challenge, state, &reason);
    write_status(controller, challenge, status).await?;
    ctx.event(&*challenge, event_type, event_reason, note).await;
    clean_up(ctx, challenge).await?;
    let status = plan::updated(challenge, |s| {
        s.presented = Some(false);
        s.processing = Some(false);
    });
    write_status(controller, challenge, status).await?;
    controller.errors.reset(&uid);
    controller.polls.reset(&uid);
    Ok(Action::await_change())
}
