//! A stand-in for an ingress controller: an HTTP server that routes each request by the
//! cluster's Ingresses to a Pod, as ingress-nginx would.
//!
//! * The `Host` header (port stripped) selects the rules: rules whose host equals it win over
//!   rules with a matching `*.` wildcard (one DNS label), which win over rules without a host.
//!   Rules of all Ingresses of all namespaces take part, whatever their class.
//! * Among those rules' paths, the longest match wins, `Exact` over a prefix of the same length.
//!   `Exact` must equal the request path; `Prefix` matches whole path elements (`/a` matches
//!   `/a` and `/a/b`, not `/ab`); `ImplementationSpecific` is a plain string prefix.
//! * The backend Service (by name, port by number or name) of the Ingress's namespace gives the
//!   selector and the target port (a number, or a container port name); the request goes to the
//!   first Ready, Running Pod (by name) that the selector matches and that has a pod IP.
//!
//! * When no Ingress rule matches, Gateway API HTTPRoutes (of any parent Gateway) are tried
//!   the same way: `hostnames`, then the longest `Exact` or `PathPrefix` match, to the first
//!   Service of `backendRefs`.
//!
//! 404 when no rule matches, 503 when the Service or a ready endpoint is missing, 502 when the
//! endpoint does not answer. Ingresses, Services and Pods come from reflectors (watches), so a
//! change in the cluster routes the next request. No TLS, no default backend, no annotations.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, ServiceBackendPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, reflector as reflect};
use kube::{Api, Client, ResourceExt};
use tokio::sync::oneshot;

use crate::ControlPlane;
use crate::kubelet::ready_pod_ip;

/// A running ingress stand-in; see the module documentation. Stops on drop.
#[derive(Debug)]
pub struct IngressRouter {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IngressRouter {
    /// Listens on `addr` (normally `(cp.ingress_ip(), 80)`, where Pebble validates HTTP-01) and
    /// routes requests by the Ingresses of `cp`. Returns once the Ingresses, Services and Pods
    /// are listed. Runs on a thread and tokio runtime of its own, so it serves the tests of any
    /// runtime, and outlives the one it was started from.
    pub async fn start(cp: &ControlPlane, addr: SocketAddr) -> anyhow::Result<IngressRouter> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                anyhow!(
                    "binding {addr}: {e}: a port below 1024 (Pebble validates HTTP-01 on port \
                     80) needs root or CAP_NET_BIND_SERVICE (e.g. `setcap \
                     cap_net_bind_service+ep` on the test binary)"
                )
            } else {
                anyhow!("binding {addr}: {e}")
            }
        })?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let config = cp.kube_config();
        let (stop, stopped) = oneshot::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("certsmith-e2e-ingress".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Stores::start(config).await {
                        Ok(stores) => {
                            let _ = ready_tx.send(Ok(()));
                            serve(listener, Arc::new(stores), stopped).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let router = IngressRouter {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        };
        match tokio::time::timeout(Duration::from_secs(60), ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(router),
            Ok(Ok(Err(e))) => Err(e.context("starting the ingress router")),
            Ok(Err(_)) => bail!("the ingress router's thread ended while starting"),
            Err(_) => bail!("the ingress router's watches did not start within 60 s"),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for IngressRouter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the router knows of the cluster.
struct Stores {
    ingresses: Store<Ingress>,
    services: Store<Service>,
    pods: Store<Pod>,
    /// Reads Gateway API HTTPRoutes when no Ingress rule matches (their CRD may not be
    /// installed, so they are listed on demand rather than watched).
    client: Client,
}

impl Stores {
    async fn start(config: kube::Config) -> anyhow::Result<Stores> {
        let client = Client::try_from(config)?;
        let stores = Stores {
            ingresses: reflect_all(&client),
            services: reflect_all(&client),
            pods: reflect_all(&client),
            client: client.clone(),
        };
        tokio::time::timeout(Duration::from_secs(30), async {
            stores.ingresses.wait_until_ready().await?;
            stores.services.wait_until_ready().await?;
            stores.pods.wait_until_ready().await
        })
        .await
        .map_err(|_| anyhow!("listing Ingresses, Services and Pods took over 30 s"))??;
        Ok(stores)
    }
}

/// A store of all objects of kind `K`, kept current by a task of the current runtime.
fn reflect_all<K>(client: &Client) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflect(
        writer,
        watcher(Api::<K>::all(client.clone()), Default::default()),
    )
    .default_backoff()
    .touched_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                eprintln!("certsmith-e2e: ingress router: watching: {e}");
            }
        }
    });
    reader
}

async fn serve(
    listener: std::net::TcpListener,
    stores: Arc<Stores>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("certsmith-e2e: ingress router: {e}");
            return;
        }
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("certsmith-e2e: ingress router: accepting: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let stores = stores.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(stores.clone(), peer, req));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(message + "\n"))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

async fn handle(
    stores: Arc<Stores>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .map(|h| strip_port(h).to_ascii_lowercase())
        .unwrap_or_default();
    let path = req.uri().path().to_owned();
    let backend = match route(&stores.ingresses.state(), &host, &path) {
        Some(backend) => Some(backend),
        None => route_http(&list_httproutes(&stores.client).await, &host, &path),
    };
    let Some(backend) = backend else {
        return Ok(text(
            StatusCode::NOT_FOUND,
            format!("no Ingress or HTTPRoute rule matches host {host:?} path {path:?}"),
        ));
    };
    let endpoint = match endpoint(&stores.services, &stores.pods.state(), &backend) {
        Ok(endpoint) => endpoint,
        Err(why) => return Ok(text(StatusCode::SERVICE_UNAVAILABLE, why)),
    };
    Ok(match proxy(endpoint, peer, req).await {
        Ok(response) => response.map(BodyExt::boxed),
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            format!("proxying to {endpoint}: {e}"),
        ),
    })
}

async fn proxy(
    endpoint: SocketAddr,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> anyhow::Result<Response<Incoming>> {
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(endpoint),
    )
    .await
    .map_err(|_| anyhow!("connecting timed out"))??;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Runs until the response body has been read, then ends with the connection.
    tokio::spawn(connection);
    let (mut parts, body) = req.into_parts();
    let origin_form = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()?;
    parts.uri = origin_form;
    parts.headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(&peer.ip().to_string())?,
    );
    Ok(sender
        .send_request(Request::from_parts(parts, body))
        .await?)
}

/// The host of a `Host` header without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match host.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => host,
    }
}

/// Where a request goes: a Service port in a namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port: ServiceBackendPort,
}

/// How well a rule's host matches: higher is more specific.
fn host_rank(rule_host: Option<&str>, host: &str) -> Option<u8> {
    match rule_host.unwrap_or("") {
        "" => Some(0),
        h if h.eq_ignore_ascii_case(host) => Some(2),
        h => {
            let suffix = h.strip_prefix("*.")?;
            let (label, rest) = host.split_once('.')?;
            (!label.is_empty() && rest.eq_ignore_ascii_case(suffix)).then_some(1)
        }
    }
}

/// How well a rule path matches: (length, exact), higher is more specific.
fn path_rank(rule_path: Option<&str>, path_type: &str, path: &str) -> Option<(usize, bool)> {
    let rule_path = rule_path.unwrap_or("/");
    let matches = match path_type {
        "Exact" => path == rule_path,
        "Prefix" => {
            let prefix = rule_path.trim_end_matches('/');
            prefix.is_empty()
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('/'))
        }
        _ => path.starts_with(rule_path),
    };
    matches.then_some((rule_path.len(), path_type == "Exact"))
}

/// The backend of the best rule for `host` and `path` (see the module documentation).
pub fn route(ingresses: &[Arc<Ingress>], host: &str, path: &str) -> Option<Backend> {
    let rules = ingresses.iter().flat_map(|ing| {
        let namespace = ing.namespace().unwrap_or_default();
        ing.spec
            .iter()
            .flat_map(|s| s.rules.iter().flatten())
            .map(move |rule| (namespace.clone(), rule))
    });
    let matching: Vec<_> = rules
        .filter_map(|(ns, rule)| Some((host_rank(rule.host.as_deref(), host)?, ns, rule)))
        .collect();
    let best_host = matching.iter().map(|(rank, _, _)| *rank).max()?;
    matching
        .into_iter()
        .filter(|(rank, _, _)| *rank == best_host)
        .flat_map(|(_, ns, rule)| {
            rule.http
                .iter()
                .flat_map(|h| h.paths.iter())
                .filter_map(move |p| {
                    let rank = path_rank(p.path.as_deref(), &p.path_type, path)?;
                    let service = p.backend.service.as_ref()?;
                    Some((
                        rank,
                        Backend {
                            namespace: ns.clone(),
                            service: service.name.clone(),
                            port: service.port.clone().unwrap_or_default(),
                        },
                    ))
                })
        })
        // max_by_key keeps the last of equals; reversing makes the first listed win ties.
        .rev()
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, backend)| backend)
}

/// Every HTTPRoute (`gateway.networking.k8s.io/v1`) of the cluster; none when the Gateway API
/// CRDs are not installed.
async fn list_httproutes(client: &Client) -> Vec<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
    ));
    Api::<DynamicObject>::all_with(client.clone(), &resource)
        .list(&Default::default())
        .await
        .map(|list| list.items)
        .unwrap_or_default()
}

/// The backend of the best HTTPRoute rule for `host` and `path`: hostnames as Ingress hosts
/// (none: any host), then the longest `Exact` or `PathPrefix` path match (no match: prefix `/`),
/// the first Service `backendRefs` entry. Parents (Gateways) and other match kinds are ignored.
pub fn route_http(routes: &[DynamicObject], host: &str, path: &str) -> Option<Backend> {
    type Rank = (u8, (usize, bool));
    let mut best: Option<(Rank, Backend)> = None;
    for route in routes {
        let namespace = route.namespace().unwrap_or_default();
        let spec = &route.data["spec"];
        let hostnames: Vec<&str> = spec["hostnames"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h.as_str()).collect())
            .unwrap_or_default();
        let host_rank = if hostnames.is_empty() {
            Some(0)
        } else {
            hostnames
                .iter()
                .filter_map(|h| host_rank(Some(h), host))
                .max()
        };
        let Some(host_rank) = host_rank else { continue };
        for rule in spec["rules"].as_array().into_iter().flatten() {
            let Some(backend) = rule["backendRefs"].as_array().and_then(|refs| {
                refs.iter().find(|r| {
                    r["kind"].as_str().unwrap_or("Service") == "Service"
                        && r["group"].as_str().unwrap_or("").is_empty()
                })
            }) else {
                continue;
            };
            let backend = Backend {
                namespace: backend["namespace"]
                    .as_str()
                    .map_or_else(|| namespace.clone(), String::from),
                service: backend["name"].as_str().unwrap_or_default().to_owned(),
                port: ServiceBackendPort {
                    number: backend["port"].as_i64().map(|p| p as i32),
                    name: None,
                },
            };
            let matches: Vec<(&str, &str)> = match rule["matches"].as_array() {
                Some(m) if !m.is_empty() => m
                    .iter()
                    .map(|m| {
                        (
                            m["path"]["type"].as_str().unwrap_or("PathPrefix"),
                            m["path"]["value"].as_str().unwrap_or("/"),
                        )
                    })
                    .collect(),
                _ => vec![("PathPrefix", "/")],
            };
            for (path_type, value) in matches {
                let path_type = match path_type {
                    "Exact" => "Exact",
                    "PathPrefix" => "Prefix",
                    _ => continue,
                };
                let Some(rank) = path_rank(Some(value), path_type, path) else {
                    continue;
                };
                if best.as_ref().is_none_or(|(b, _)| (host_rank, rank) > *b) {
                    best = Some(((host_rank, rank), backend.clone()));
                }
            }
        }
    }
    best.map(|(_, backend)| backend)
}

/// The address of a ready Pod behind `backend`, or why there is none.
pub fn endpoint(
    services: &Store<Service>,
    pods: &[Arc<Pod>],
    backend: &Backend,
) -> Result<SocketAddr, String> {
    let name = format!("{}/{}", backend.namespace, backend.service);
    let service = services
        .get(&ObjectRef::new(&backend.service).within(&backend.namespace))
        .ok_or_else(|| format!("no Service {name}"))?;
    let spec = service
        .spec
        .as_ref()
        .ok_or_else(|| format!("Service {name} has no spec"))?;
    let port = spec
        .ports
        .iter()
        .flatten()
        .find(|p| match (&backend.port.number, &backend.port.name) {
            (Some(number), _) => p.port == *number,
            (None, Some(port_name)) => p.name.as_deref() == Some(port_name.as_str()),
            (None, None) => false,
        })
        .ok_or_else(|| format!("Service {name} has no port {:?}", backend.port))?;
    let selector = spec
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("Service {name} has no selector"))?;
    let target = port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port));
    let mut candidates: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|pod| pod.namespace().as_deref() == Some(backend.namespace.as_str()))
        .filter(|pod| {
            let labels = pod.labels();
            selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect();
    candidates.sort_by_key(|pod| pod.name_any());
    candidates
        .into_iter()
        .find_map(|pod| {
            let ip: IpAddr = ready_pod_ip(pod)?;
            let port = match &target {
                IntOrString::Int(n) => u16::try_from(*n).ok()?,
                IntOrString::String(port_name) => named_port(pod, port_name)?,
            };
            Some(SocketAddr::new(ip, port))
        })
        .ok_or_else(|| format!("no ready endpoint for Service {name}"))
}

fn named_port(pod: &Pod, name: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn ingress(ns: &str, rules: serde_json::Value) -> Arc<Ingress> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "i", "namespace": ns},
                "spec": {"rules": rules},
            }))
            .unwrap(),
        )
    }

    fn path(path: &str, path_type: &str, service: &str) -> serde_json::Value {
        json!({"path": path, "pathType": path_type, "backend": {"service": {"name": service, "port": {"number": 80}}}})
    }

    fn routed(ingresses: &[Arc<Ingress>], host: &str, p: &str) -> Option<String> {
        route(ingresses, host, p).map(|b| format!("{}/{}", b.namespace, b.service))
    }

    fn httproute(ns: &str, spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": ns}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn routes_httproutes_by_hostname_and_path() {
        let backend = |name: &str| json!([{"name": name, "port": 8089}]);
        let routes = [
            httproute(
                "a",
                json!({"hostnames": ["example.com"], "rules": [
                    {"backendRefs": backend("root")},
                    {"matches": [{"path": {"type": "Exact", "value": "/.well-known/acme-challenge/t"}}],
                     "backendRefs": [{"name": "solver", "namespace": "b", "port": 8089}]},
                    {"matches": [{"path": {"type": "RegularExpression", "value": ".*"}}],
                     "backendRefs": backend("regex")},
                ]}),
            ),
            httproute(
                "c",
                json!({"rules": [{"matches": [{"path": {"value": "/any"}}], "backendRefs": backend("any")}]}),
            ),
        ];
        let r = |host, p| {
            route_http(&routes, host, p)
                .map(|b| format!("{}/{}:{:?}", b.namespace, b.service, b.port.number))
        };
        assert_eq!(r("example.com", "/x").as_deref(), Some("a/root:Some(8089)"));
        assert_eq!(
            r("example.com", "/.well-known/acme-challenge/t").as_deref(),
            Some("b/solver:Some(8089)")
        );
        assert_eq!(
            r("other.com", "/any/thing").as_deref(),
            Some("c/any:Some(8089)")
        );
        assert_eq!(r("other.com", "/x"), None);
    }

    #[test]
    fn routes_like_an_ingress_controller() {
        let ingresses = [
            ingress(
                "a",
                json!([
                    {"host": "example.com", "http": {"paths": [
                        path("/", "Prefix", "root"),
                        path("/api", "Prefix", "api"),
                        path("/api/v1", "Exact", "v1"),
                        path("/static", "ImplementationSpecific", "static"),
                    ]}},
                    {"host": "*.example.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
                ]),
            ),
            ingress(
                "b",
                json!([
                    {"http": {"paths": [path("/.well-known/acme-challenge/t", "Exact", "solver")]}},
                    {"host": "example.com", "http": {"paths": [path("/api/v1", "Prefix", "v1-prefix")]}},
                ]),
            ),
        ];
        let r = |host, p| routed(&ingresses, host, p);
        assert_eq!(r("example.com", "/").as_deref(), Some("a/root"));
        assert_eq!(r("example.com", "/apix").as_deref(), Some("a/root"));
        assert_eq!(r("example.com", "/api").as_deref(), Some("a/api"));
        assert_eq!(r("example.com", "/api/x").as_deref(), Some("a/api"));
        assert_eq!(
            r("example.com", "/api/v1").as_deref(),
            Some("a/v1"),
            "Exact beats Prefix"
        );
        assert_eq!(
            r("example.com", "/api/v1/x").as_deref(),
            Some("b/v1-prefix")
        );
        assert_eq!(r("example.com", "/staticfile").as_deref(), Some("a/static"));
        assert_eq!(r("www.example.com", "/x").as_deref(), Some("a/wild"));
        assert_eq!(
            r("a.b.example.com", "/x"),
            None,
            "a wildcard covers one label"
        );
        assert_eq!(
            r("other.org", "/.well-known/acme-challenge/t").as_deref(),
            Some("b/solver")
        );
        assert_eq!(r("other.org", "/.well-known/acme-challenge/u"), None);
        assert_eq!(
            r("example.com", "/.well-known/acme-challenge/t").as_deref(),
            Some("a/root"),
            "a host's own rules win over hostless ones"
        );
        assert_eq!(strip_port("example.com:80"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
    }

    #[test]
    fn finds_a_ready_endpoint() {
        let (services, mut writer) = reflector::store::<Service>();
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "svc", "namespace": "a"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "named", "port": 81, "targetPort": "alt"},
            ]},
        }))
        .unwrap();
        writer.apply_watcher_event(&Event::Apply(service));
        let pod = |name: &str, ready: bool| -> Arc<Pod> {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "a", "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "ports": [{"name": "alt", "containerPort": 9090}]}]},
                    "status": {"phase": "Running", "podIP": format!("127.5.5.{}", name.len()),
                               "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
                }))
                .unwrap(),
            )
        };
        let backend = |port: serde_json::Value| Backend {
            namespace: "a".into(),
            service: "svc".into(),
            port: serde_json::from_value(port).unwrap(),
        };
        let pods = [pod("not-ready", false), pod("ok", true)];
        assert_eq!(
            endpoint(&services, &pods, &backend(json!({"number": 80}))),
            Ok("127.5.5.2:8080".parse().unwrap())
        );
        assert_eq!(
            endpoint(&services, &pods, &backend(json!({"name": "named"}))),
            Ok("127.5.5.2:9090".parse().unwrap())
        );
        assert!(endpoint(&services, &pods[..1], &backend(json!({"number": 80}))).is_err());
        assert!(endpoint(&services, &pods, &backend(json!({"number": 82}))).is_err());
        let missing = Backend {
            service: "nope".into(),
            ..backend(json!({"number": 80}))
        };
        assert_eq!(
            endpoint(&services, &pods, &missing),
            Err("no Service a/nope".into())
        );
    }
}
