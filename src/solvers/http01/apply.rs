//! Puts the solver objects of a challenge into the cluster and takes them out again.
//!
//! Objects are found by the identity labels and the controller reference to the Challenge (as
//! cert-manager finds them), read straight from the API server rather than a cache, so a
//! present() that follows another one sees its objects and creates no duplicates.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::httproute::HTTPRoute;
use super::objects::{self, ingress_host, ingress_path, is_controlled_by, namespace};
use super::{FIELD_MANAGER, Http01Error, Http01Settings};
use crate::api::Challenge;

/// How often a read-modify-write of an existing Ingress is retried on a conflict.
const CONFLICT_RETRIES: usize = 5;

/// Creates the solver Pod, Service and Ingress of an HTTP-01 challenge, or keeps the ones that
/// exist (idempotent). With `http01.ingress.name`, adds the challenge path to that Ingress
/// instead of creating one.
pub async fn present(
    client: &Client,
    challenge: &Challenge,
    settings: &Http01Settings,
) -> Result<(), Http01Error> {
    if super::httproute::route_solver(challenge).is_some() {
        let ns = namespace(challenge)?;
        ensure_pod(client, ns, challenge, settings).await?;
        let service = ensure_service(client, ns, challenge, settings).await?;
        return ensure_httproute(client, ns, challenge, settings, &service).await;
    }
    let solver = objects::ingress_solver(challenge)?;
    let ns = namespace(challenge)?;
    ensure_pod(client, ns, challenge, settings).await?;
    let service = ensure_service(client, ns, challenge, settings).await?;
    match solver.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => add_path_to_ingress(client, ns, name, challenge, &service).await,
        None => ensure_ingress(client, ns, challenge, settings, &service).await,
    }
}

/// Deletes the solver objects of a challenge, or removes its path from the Ingress named by
/// `http01.ingress.name`. Idempotent.
pub async fn cleanup(client: &Client, challenge: &Challenge) -> Result<(), Http01Error> {
    if super::httproute::route_solver(challenge).is_some() {
        let ns = namespace(challenge)?;
        delete_all::<Pod>(client, ns, challenge).await?;
        delete_all::<Service>(client, ns, challenge).await?;
        return delete_all::<HTTPRoute>(client, ns, challenge).await;
    }
    let solver = objects::ingress_solver(challenge)?;
    let ns = namespace(challenge)?;
    delete_all::<Pod>(client, ns, challenge).await?;
    delete_all::<Service>(client, ns, challenge).await?;
    delete_all::<Ingress>(client, ns, challenge).await?;
    if let Some(name) = solver.name.as_deref().filter(|n| !n.is_empty()) {
        remove_path_from_ingress(client, ns, name, challenge).await?;
    }
    Ok(())
}

fn kube_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Http01Error {
    let action = action.into();
    move |error| Http01Error::Kube { action, error }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn kind<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).into_owned()
}

/// The objects of kind `K` in `ns` that belong to `challenge` and are not being deleted,
/// oldest first.
async fn owned<K>(client: &Client, ns: &str, challenge: &Challenge) -> Result<Vec<K>, Http01Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(&objects::label_selector(challenge));
    let list = api.list(&params).await.map_err(kube_error(format!(
        "listing solver {}s in {ns}",
        kind::<K>()
    )))?;
    let mut items: Vec<K> = list
        .items
        .into_iter()
        .filter(|o| is_controlled_by(o.meta(), challenge) && o.meta().deletion_timestamp.is_none())
        .collect();
    items.sort_by(|a, b| {
        (a.meta().creation_timestamp.as_ref(), a.meta().name.as_ref())
            .cmp(&(b.meta().creation_timestamp.as_ref(), b.meta().name.as_ref()))
    });
    Ok(items)
}

async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), Http01Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(kube_error(format!("deleting {} {name}", kind::<K>()))(e)),
    }
}

async fn delete_all<K>(client: &Client, ns: &str, challenge: &Challenge) -> Result<(), Http01Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    for object in owned::<K>(client, ns, challenge).await? {
        delete(&api, &object.name_any()).await?;
    }
    Ok(())
}

/// Keeps the oldest of `existing` and deletes the others (left by concurrent present() calls);
/// returns the one kept.
async fn keep_oldest<K>(api: &Api<K>, mut existing: Vec<K>) -> Result<Option<K>, Http01Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if existing.is_empty() {
        return Ok(None);
    }
    for extra in existing.drain(1..) {
        tracing::info!(kind = %kind::<K>(), name = %extra.name_any(), "deleting a duplicate HTTP-01 solver object");
        delete(api, &extra.name_any()).await?;
    }
    Ok(existing.pop())
}

async fn create<K>(api: &Api<K>, object: &K) -> Result<K, Http01Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let created = api
        .create(&params, object)
        .await
        .map_err(kube_error(format!("creating a solver {}", kind::<K>())))?;
    tracing::info!(kind = %kind::<K>(), name = %created.name_any(), "created an HTTP-01 solver object");
    Ok(created)
}

async fn ensure_pod(
    client: &Client,
    ns: &str,
    challenge: &Challenge,
    settings: &Http01Settings,
) -> Result<(), Http01Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let existing = owned::<Pod>(client, ns, challenge).await?;
    if let Some(pod) = keep_oldest(&api, existing).await? {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if !matches!(phase, Some("Succeeded" | "Failed")) {
            return Ok(());
        }
        // A solver that exited serves nothing and is never restarted: replace it.
        delete(&api, &pod.name_any()).await?;
    }
    create(&api, &objects::build_pod(challenge, settings)?).await?;
    Ok(())
}

/// The name of the solver Service.
async fn ensure_service(
    client: &Client,
    ns: &str,
    challenge: &Challenge,
    settings: &Http01Settings,
) -> Result<String, Http01Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let existing = owned::<Service>(client, ns, challenge).await?;
    let service = match keep_oldest(&api, existing).await? {
        Some(service) => service,
        None => create(&api, &objects::build_service(challenge, settings)?).await?,
    };
    Ok(service.name_any())
}

async fn ensure_ingress(
    client: &Client,
    ns: &str,
    challenge: &Challenge,
    settings: &Http01Settings,
    service: &str,
) -> Result<(), Http01Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let desired = objects::build_ingress(challenge, settings, service)?;
    let existing = owned::<Ingress>(client, ns, challenge).await?;
    let Some(ingress) = keep_oldest(&api, existing).await? else {
        create(&api, &desired).await?;
        return Ok(());
    };
    // The Service may have been recreated under another generated name since the Ingress was
    // made; point the rules at the current one. Rules are an atomic list: a merge patch
    // replaces them whole.
    let desired_rules = desired.spec.and_then(|s| s.rules);
    if ingress.spec.as_ref().and_then(|s| s.rules.as_ref()) != desired_rules.as_ref() {
        let name = ingress.name_any();
        let patch = serde_json::json!({"spec": {"rules": desired_rules}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch(&name, &params, &Patch::Merge(&patch))
            .await
            .map_err(kube_error(format!("updating the rules of Ingress {name}")))?;
    }
    Ok(())
}

/// Applies `change` to the Ingress `name` and replaces it, retrying on conflicts: the Ingress
/// belongs to someone else, and its rules are an atomic list, so server-side apply would take
/// the whole list from its owner.
async fn edit_ingress(
    client: &Client,
    ns: &str,
    name: &str,
    missing_ok: bool,
    change: impl Fn(&mut Ingress) -> bool,
) -> Result<(), Http01Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(mut ingress) = api
            .get_opt(name)
            .await
            .map_err(kube_error(format!("reading Ingress {ns}/{name}")))?
        else {
            if missing_ok {
                return Ok(());
            }
            return Err(Http01Error::IngressNotFound {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            });
        };
        if !change(&mut ingress) {
            return Ok(());
        }
        match api.replace(name, &params, &ingress).await {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => continue,
            Err(e) => return Err(kube_error(format!("updating Ingress {ns}/{name}"))(e)),
        }
    }
}

async fn add_path_to_ingress(
    client: &Client,
    ns: &str,
    name: &str,
    challenge: &Challenge,
    service: &str,
) -> Result<(), Http01Error> {
    let host = ingress_host(&challenge.spec.dns_name);
    let path = ingress_path(&challenge.spec.token, service);
    edit_ingress(client, ns, name, false, |ingress| {
        objects::add_challenge_path(ingress, host.as_deref(), path.clone())
    })
    .await
}

async fn remove_path_from_ingress(
    client: &Client,
    ns: &str,
    name: &str,
    challenge: &Challenge,
) -> Result<(), Http01Error> {
    let host = ingress_host(&challenge.spec.dns_name);
    let path = objects::challenge_path(&challenge.spec.token);
    edit_ingress(client, ns, name, true, |ingress| {
        objects::remove_challenge_path(ingress, host.as_deref(), &path)
    })
    .await
}

/// Creates the solver HTTPRoute, or points the one that exists at the current Service.
async fn ensure_httproute(
    client: &Client,
    ns: &str,
    challenge: &Challenge,
    settings: &Http01Settings,
    service: &str,
) -> Result<(), Http01Error> {
    let api: Api<HTTPRoute> = Api::namespaced(client.clone(), ns);
    let desired = super::httproute::build_httproute(challenge, settings, service)?;
    let existing = owned::<HTTPRoute>(client, ns, challenge).await?;
    let Some(route) = keep_oldest(&api, existing).await? else {
        create(&api, &desired).await?;
        return Ok(());
    };
    if route.spec.rules != desired.spec.rules || route.spec.parent_refs != desired.spec.parent_refs
    {
        let name = route.name_any();
        let patch = serde_json::json!({"spec": {
            "rules": desired.spec.rules, "parentRefs": desired.spec.parent_refs}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        api.patch(&name, &params, &Patch::Merge(&patch))
            .await
            .map_err(kube_error(format!("updating HTTPRoute {name}")))?;
    }
    Ok(())
}
