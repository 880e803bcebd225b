//! Order: one ACME order, followed from creation to the issued chain (cert-manager's flow).
//!
//! 1. Create the ACME order — only while `status.url` is empty, and record `status.url`,
//!    `finalizeURL` and the authorizations at once. After a restart the order is re-attached by
//!    `status.url`; a second order is never created for one Order object (an in-memory record of
//!    created orders covers a status write that failed or a watch cache that lags).
//! 2. Create one Challenge per authorization that is not already valid, with the solver the
//!    issuer's selectors pick; without a fitting solver the Order stays pending with a reason
//!    and a Warning Event.
//! 3. When every Challenge is final, refresh the order: `ready` → finalize with the CSR of
//!    `spec.request`; `invalid` → `invalid` with the ACME error.
//! 4. Poll a `processing` order (short backoff, honouring Retry-After), store the chain in
//!    `status.certificate` and set `valid`.
//!
//! Owned Challenges are watched, so an Order moves on as soon as one changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::backoff::{Backoff, fingerprint};
use super::issuer::{AcmeIssuerRef, LookupError, acme_issuer};
use super::{Context, FIELD_MANAGER, KubeError, Shutdown, kube_error};
use crate::acme::{AcmeError, CertificateOutcome, OrderSnapshot};
use crate::api::acme::AcmeState;
use crate::api::order::OrderStatus;
use crate::api::{Challenge, Order};

pub mod plan;

use plan::Step;

/// How long an Order whose Challenges are being solved waits before it is looked at again
/// anyway (a Challenge change wakes it earlier).
const WAIT_RESYNC: Duration = Duration::from_secs(600);
/// Upper bound of the steps one reconcile takes.
const MAX_STEPS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{action}: {source}")]
    Acme { action: String, source: AcmeError },
    #[error(transparent)]
    Issuer(#[from] LookupError),
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

/// The state the Order reconcilers share.
pub struct OrderController {
    ctx: Arc<Context>,
    /// Reconciles that failed (API server, transient ACME errors), by Order uid.
    errors: Backoff,
    /// Polls of orders the server is still working on, by Order uid.
    polls: Backoff,
    /// Orders that cannot progress (no solver, rate limited), by Order uid.
    waits: Backoff,
    /// ACME orders created for an Order (by uid) until its `status.url` is seen.
    created: Mutex<HashMap<String, OrderSnapshot>>,
    /// The status last written, by Order uid: the watch cache may lag behind it, and a stale
    /// status must not repeat a step.
    written: Mutex<HashMap<String, OrderStatus>>,
}

/// How many written statuses are remembered at most.
const MAX_REMEMBERED: usize = 10_000;

impl OrderController {
    pub fn new(ctx: Arc<Context>) -> Arc<OrderController> {
        Arc::new(OrderController {
            ctx,
            errors: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            polls: Backoff::new(Duration::from_millis(250), Duration::from_secs(10)),
            waits: Backoff::new(Duration::from_secs(10), Duration::from_secs(300)),
            created: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
        })
    }

    fn remember(&self, uid: &str, status: &OrderStatus) {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if written.len() >= MAX_REMEMBERED {
            written.clear();
        }
        written.insert(uid.to_owned(), status.clone());
    }

    /// The Order with the status this process last wrote (the watch cache may be older).
    fn latest(&self, order: &Order) -> Order {
        let mut order = order.clone();
        let uid = order.uid().unwrap_or_default();
        if let Some(status) = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
        {
            order.status = Some(status.clone());
        }
        order
    }
}

/// Runs the Order controller until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: Shutdown) {
    let orders: Api<Order> = ctx.scoped_api();
    let challenges: Api<Challenge> = ctx.scoped_api();
    let controller = OrderController::new(ctx);
    Controller::new(orders, watcher::Config::default().any_semantic())
        .owns(challenges, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(4))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, controller)
        .for_each(|result| async move {
            crate::runtime::metrics::record_sync("orders", result.is_ok());
            match result {
                Ok((object, _)) => tracing::trace!(%object, "reconciled"),
                Err(controller::Error::ReconcilerFailed(_, _)) => {}
                Err(error) => tracing::debug!(%error, "order controller"),
            }
        })
        .await;
}

fn error_policy(order: Arc<Order>, error: &Error, controller: Arc<OrderController>) -> Action {
    let uid = order.uid().unwrap_or_default();
    let delay = controller.errors.record(&uid, 0, error.retry_after());
    tracing::warn!(
        namespace = %order.namespace().unwrap_or_default(), name = %order.name_any(),
        order_url = order.status.as_ref().and_then(|s| s.url.as_deref()).unwrap_or_default(),
        %error, retry_in_ms = delay.as_millis() as u64, "order reconcile failed"
    );
    Action::requeue(delay)
}

async fn owned_challenges(ctx: &Context, order: &Order) -> Result<Vec<Challenge>, Error> {
    let namespace = order.namespace().unwrap_or_default();
    let uid = order.uid().unwrap_or_default();
    let api: Api<Challenge> = Api::namespaced(ctx.client.clone(), &namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_error(format!("listing Challenges in {namespace}")))?;
    Ok(list
        .items
        .into_iter()
        .filter(|c| {
            c.owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && r.uid == uid)
        })
        .collect())
}

/// One reconcile's view of an Order, whose status it updates as it goes.
struct Run<'a> {
    controller: &'a OrderController,
    order: Order,
    uid: String,
}

impl Run<'_> {
    fn ctx(&self) -> &Context {
        &self.controller.ctx
    }

    fn url(&self) -> String {
        self.order
            .status
            .as_ref()
            .and_then(|s| s.url.clone())
            .unwrap_or_default()
    }

    fn status(&self) -> OrderStatus {
        self.order.status.clone().unwrap_or_default()
    }

    /// Writes `status` (when it changed) and keeps it as the Order's status.
    async fn write(&mut self, status: OrderStatus) -> Result<(), Error> {
        if self.order.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let namespace = self.order.namespace().unwrap_or_default();
        let name = self.order.name_any();
        let body = serde_json::json!({
            "apiVersion": Order::api_version(&()),
            "kind": Order::kind(&()),
            "status": status,
        });
        let api: Api<Order> = Api::namespaced(self.ctx().client.clone(), &namespace);
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(kube_error(format!(
            "writing the status of Order {namespace}/{name}"
        )))?;
        self.controller.remember(&self.uid, &status);
        self.order.status = Some(status);
        Ok(())
    }

    /// Marks the Order failed (`invalid` or `errored`) with a reason and a Warning Event.
    async fn fail(&mut self, state: AcmeState, reason: String) -> Result<Action, Error> {
        tracing::warn!(
            namespace = %self.order.namespace().unwrap_or_default(), name = %self.order.name_any(),
            order_url = %self.url(), %state, %reason, "order failed"
        );
        let mut status = self.status();
        status.state = Some(state);
        status.reason = Some(reason.clone());
        status.failure_time = Some(Time(jiff::Timestamp::now()));
        self.write(status).await?;
        self.ctx()
            .event(&self.order, EventType::Warning, "Failed", reason)
            .await;
        self.controller.polls.reset(&self.uid);
        Ok(Action::await_change())
    }

    /// Handles an ACME error of `action`: terminal → the Order fails as `state`; rate limited →
    /// wait as asked, with the reason recorded; otherwise an error (retried with backoff).
    async fn acme_failed(
        &mut self,
        action: &str,
        error: AcmeError,
        state: AcmeState,
    ) -> Result<Action, Error> {
        if error.is_terminal() {
            return self.fail(state, format!("{action}: {error}")).await;
        }
        if error.is_rate_limited() {
            let delay = self
                .controller
                .waits
                .record(&self.uid, 0, error.retry_after())
                .max(error.retry_after().unwrap_or_default());
            let mut status = self.status();
            status.reason = Some(format!("{action}: {error}"));
            self.write(status).await?;
            tracing::info!(
                namespace = %self.order.namespace().unwrap_or_default(), name = %self.order.name_any(),
                %error, retry_in_s = delay.as_secs(), "rate limited by the ACME server"
            );
            return Ok(Action::requeue(delay));
        }
        Err(Error::Acme {
            action: action.to_owned(),
            source: error,
        })
    }

    /// Applies what a snapshot says about the order's state (never `valid`: that is written with
    /// the certificate).
    fn with_snapshot(&self, snapshot: &OrderSnapshot) -> OrderStatus {
        let mut status = self.status();
        status.url = Some(snapshot.url.clone());
        status.finalize_url = Some(snapshot.finalize_url.clone());
        if snapshot.has_all_authorizations() && status.authorizations.is_none() {
            status.authorizations = Some(plan::status_authorizations(snapshot));
        }
        status.state = Some(match snapshot.status {
            AcmeState::Valid => AcmeState::Processing,
            other => other,
        });
        status
    }
}

async fn reconcile(order: Arc<Order>, controller: Arc<OrderController>) -> Result<Action, Error> {
    let ctx = controller.ctx.clone();
    let uid = order.uid().unwrap_or_default();
    if order.meta().deletion_timestamp.is_some() {
        controller
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
        controller
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
        return Ok(Action::await_change());
    }
    let order = controller.latest(&order);
    if order
        .status
        .as_ref()
        .and_then(|s| s.url.as_deref())
        .is_some_and(|u| !u.is_empty())
    {
        controller
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
    }
    let mut run = Run {
        controller: &controller,
        order: order.clone(),
        uid: uid.clone(),
    };
    let namespace = order.namespace().unwrap_or_default();
    let name = order.name_any();
    let mut challenges = owned_challenges(&ctx, &order).await?;

    let mut issuer: Option<AcmeIssuerRef> = None;
    // Whether the order's state was fetched from the server in this reconcile.
    let mut fresh = false;
    for _ in 0..MAX_STEPS {
        let step = plan::next_step(&run.order, &challenges);
        tracing::debug!(%namespace, %name, order_url = %run.url(), ?step, "order step");
        if step == Step::Final {
            if run.order.state() == Some(AcmeState::Valid) {
                delete_challenges(&ctx, &challenges).await?;
            }
            controller.polls.reset(&uid);
            controller.waits.reset(&uid);
            controller.errors.reset(&uid);
            return Ok(Action::await_change());
        }
        if step == Step::Wait {
            controller.errors.reset(&uid);
            return Ok(Action::requeue(WAIT_RESYNC));
        }
        if issuer.is_none() {
            let Some(resolved) = acme_issuer(&ctx, &namespace, &run.order.spec.issuer_ref).await?
            else {
                // An external issuer's Order: not ours.
                return Ok(Action::await_change());
            };
            issuer = Some(resolved);
        }
        let resolved = issuer.as_ref().expect("resolved above");
        let account = &resolved.account;
        let url = run.url();

        match step {
            Step::Final | Step::Wait => unreachable!("handled above"),
            Step::Create => {
                let remembered = controller
                    .created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&uid)
                    .cloned();
                let snapshot = match remembered {
                    Some(snapshot) => snapshot,
                    None => {
                        let request = match plan::new_order_request(&run.order) {
                            Ok(request) => request,
                            Err(reason) => {
                                return run
                                    .fail(
                                        AcmeState::Errored,
                                        format!("Failed to create Order: {reason}"),
                                    )
                                    .await;
                            }
                        };
                        if order.spec.duration.is_some()
                            && resolved.acme.enable_duration_feature == Some(true)
                        {
                            tracing::info!(%namespace, %name, "the requested duration is not sent: certsmith's ACME client cannot set notAfter");
                        }
                        match account.create_order(&request).await {
                            Ok(snapshot) => {
                                controller
                                    .created
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(uid.clone(), snapshot.clone());
                                tracing::info!(
                                    %namespace, %name, order_url = %snapshot.url,
                                    dns_names = ?request.dns_names, ip_addresses = ?request.ip_addresses,
                                    "ACME order created"
                                );
                                snapshot
                            }
                            Err(error) => {
                                return run
                                    .acme_failed(
                                        "Failed to create Order",
                                        error,
                                        AcmeState::Errored,
                                    )
                                    .await;
                            }
                        }
                    }
                };
                let mut status = run.with_snapshot(&snapshot);
                status.reason = None;
                run.write(status).await?;
                fresh = true;
            }
            Step::Details => match account.order_details(&url).await {
                Ok(snapshot) => {
                    let status = run.with_snapshot(&snapshot);
                    run.write(status).await?;
                    fresh = true;
                }
                Err(error) => {
                    return run
                        .acme_failed("Failed to retrieve Order", error, AcmeState::Errored)
                        .await;
                }
            },
            Step::CreateChallenges => {
                let plan = plan::desired_challenges(
                    &run.order,
                    resolved.acme.solvers(),
                    account.thumbprint(),
                );
                let api: Api<Challenge> = Api::namespaced(ctx.client.clone(), &namespace);
                for challenge in &plan.challenges {
                    let challenge_name = challenge.name_any();
                    if challenges.iter().any(|c| c.name_any() == challenge_name) {
                        continue;
                    }
                    let created = api
                        .patch(
                            &challenge_name,
                            &PatchParams::apply(FIELD_MANAGER).force(),
                            &Patch::Apply(challenge),
                        )
                        .await
                        .map_err(kube_error(format!(
                            "creating Challenge {namespace}/{challenge_name}"
                        )))?;
                    tracing::info!(
                        %namespace, %name, challenge = %challenge_name, dns_name = %challenge.spec.dns_name,
                        r#type = %challenge.spec.type_, "created Challenge"
                    );
                    ctx.event(
                        &run.order,
                        EventType::Normal,
                        "Created",
                        format!(
                            "Created Challenge resource {:?} for domain {:?}",
                            challenge_name, challenge.spec.dns_name
                        ),
                    )
                    .await;
                    challenges.push(created);
                }
                if !plan.unsolvable.is_empty() {
                    let reason = plan::no_solver_message(&plan.unsolvable);
                    let changed = run.order.status.as_ref().and_then(|s| s.reason.as_deref())
                        != Some(reason.as_str());
                    let mut status = run.status();
                    status.reason = Some(reason.clone());
                    run.write(status).await?;
                    if changed {
                        tracing::warn!(%namespace, %name, %reason, "no solver for some identifiers");
                        ctx.event(&run.order, EventType::Warning, "Solver", reason)
                            .await;
                    }
                    let delay = controller
                        .waits
                        .record(&uid, fingerprint(&plan.unsolvable), None);
                    controller.errors.reset(&uid);
                    return Ok(Action::requeue(delay));
                }
                controller.waits.reset(&uid);
            }
            Step::Refresh | Step::Finalize if !fresh => match account.refresh_order(&url).await {
                Ok(snapshot) => {
                    fresh = true;
                    if snapshot.status == AcmeState::Invalid {
                        let reason = plan::failed_challenge_reason(&challenges)
                            .or_else(|| snapshot.error.as_ref().map(ToString::to_string))
                            .unwrap_or_else(|| {
                                "the ACME server marked the order invalid".to_owned()
                            });
                        return run.fail(AcmeState::Invalid, reason).await;
                    }
                    if snapshot.status == AcmeState::Pending {
                        let delay = controller.polls.record(&uid, 0, snapshot.retry_after);
                        controller.errors.reset(&uid);
                        return Ok(Action::requeue(delay));
                    }
                    let mut status = run.with_snapshot(&snapshot);
                    status.reason = None;
                    run.write(status).await?;
                }
                Err(error) => {
                    return run
                        .acme_failed("Failed to retrieve Order", error, AcmeState::Errored)
                        .await;
                }
            },
            Step::Refresh => {
                // Fetched in this reconcile, every authorization done, but the order is not
                // ready yet: the server is catching up; look again shortly.
                controller.errors.reset(&uid);
                return Ok(Action::requeue(controller.polls.record(&uid, 0, None)));
            }
            Step::Finalize => {
                let csr = match plan::csr_der(&run.order.spec.request.0) {
                    Ok(csr) => csr,
                    Err(reason) => {
                        return run
                            .fail(
                                AcmeState::Errored,
                                format!("Failed to finalize Order: {reason}"),
                            )
                            .await;
                    }
                };
                match account.finalize(&url, &csr).await {
                    Ok(snapshot) => {
                        tracing::info!(%namespace, %name, order_url = %url, state = %snapshot.status, "finalized order");
                        if snapshot.status == AcmeState::Invalid {
                            let reason = snapshot
                                .error
                                .as_ref()
                                .map(|e| format!("Failed to finalize Order: {e}"))
                                .unwrap_or_else(|| "Failed to finalize Order: the ACME server marked the order invalid".to_owned());
                            return run.fail(AcmeState::Invalid, reason).await;
                        }
                        let status = run.with_snapshot(&snapshot);
                        run.write(status).await?;
                    }
                    Err(error) => {
                        return run
                            .acme_failed("Failed to finalize Order", error, AcmeState::Errored)
                            .await;
                    }
                }
            }
            Step::Certificate => match account.certificate(&url).await {
                Ok(CertificateOutcome::Issued(chain)) => {
                    let mut status = run.status();
                    status.certificate = Some(ByteString(chain.into_bytes()));
                    status.state = Some(AcmeState::Valid);
                    status.reason = None;
                    status.failure_time = None;
                    run.write(status).await?;
                    tracing::info!(%namespace, %name, order_url = %url, "order complete");
                    ctx.event(
                        &run.order,
                        EventType::Normal,
                        "Complete",
                        "Order completed successfully".to_owned(),
                    )
                    .await;
                }
                Ok(CertificateOutcome::Processing { retry_after }) => {
                    let delay = controller.polls.record(&uid, 0, retry_after);
                    controller.errors.reset(&uid);
                    return Ok(Action::requeue(delay));
                }
                Err(error) if error.is_terminal() => {
                    // Did the server reject the order after finalizing?
                    let state = match account.refresh_order(&url).await {
                        Ok(snapshot) if snapshot.status == AcmeState::Invalid => AcmeState::Invalid,
                        _ => AcmeState::Errored,
                    };
                    return run
                        .fail(
                            state,
                            format!("Failed to retrieve the certificate: {error}"),
                        )
                        .await;
                }
                Err(error) => {
                    return run
                        .acme_failed(
                            "Failed to retrieve the certificate",
                            error,
                            AcmeState::Errored,
                        )
                        .await;
                }
            },
        }
    }
    // Many steps in one go; carry on in the next reconcile.
    controller.errors.reset(&uid);
    Ok(Action::requeue(Duration::from_millis(100)))
}

/// Deletes the Challenges of a completed Order (their finalizer cleans up the solvers).
async fn delete_challenges(ctx: &Context, challenges: &[Challenge]) -> Result<(), Error> {
    for challenge in challenges
        .iter()
        .filter(|c| c.meta().deletion_timestamp.is_none())
    {
        let namespace = challenge.namespace().unwrap_or_default();
        let api: Api<Challenge> = Api::namespaced(ctx.client.clone(), &namespace);
        match api
            .delete(&challenge.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(kube_error(format!(
                    "deleting Challenge {namespace}/{}",
                    challenge.name_any()
                ))(e)
                .into());
            }
        }
    }
    Ok(())
}
