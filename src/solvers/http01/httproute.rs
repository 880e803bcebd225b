//! The Gateway API HTTPRoute of an HTTP-01 challenge solved by `http01.gatewayHTTPRoute`, built
//! as cert-manager builds it (`pkg/issuer/acme/http/httproute.go`): the solver labels, owned by
//! the Challenge, attached to the solver's `parentRefs`, one rule sending the exact challenge
//! path of the challenge's host to the solver Service. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::objects::{
    GENERATE_NAME, SOLVER_PORT, challenge_path, identity_labels, ingress_host, namespace,
    object_labels, owner_reference,
};
use super::{Http01Error, Http01Settings};
use crate::api::Challenge;
use crate::api::acme::{AcmeChallengeSolverHttp01GatewayHttpRoute, ParentReference};
use crate::api::challenge::ChallengeType;

/// The part of a `gateway.networking.k8s.io/v1` HTTPRoute the solver writes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_refs: Option<Vec<ParentReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostnames: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<HttpRouteRule>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<HttpRouteMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_refs: Option<Vec<HttpBackendRef>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HttpRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HttpPathMatch {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HttpBackendRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// The `http01.gatewayHTTPRoute` solver of an HTTP-01 challenge, if that is its solver.
pub fn route_solver(challenge: &Challenge) -> Option<&AcmeChallengeSolverHttp01GatewayHttpRoute> {
    (challenge.spec.type_ == ChallengeType::Http01)
        .then_some(challenge.spec.solver.http01.as_ref())
        .flatten()
        .filter(|h| h.ingress.is_none())
        .and_then(|h| h.gateway_http_route.as_ref())
}

/// The solver HTTPRoute of a `gatewayHTTPRoute` challenge, routing to `service_name`.
pub fn build_httproute(
    challenge: &Challenge,
    settings: &Http01Settings,
    service_name: &str,
) -> Result<HTTPRoute, Http01Error> {
    let solver = route_solver(challenge).ok_or(Http01Error::NotHttp01)?;
    let ns = namespace(challenge)?.to_owned();
    let mut labels: BTreeMap<String, String> = object_labels(challenge, &settings.extra_labels);
    if let Some(extra) = &solver.labels {
        labels.extend(extra.clone());
        labels.extend(identity_labels(challenge));
    }
    Ok(HTTPRoute {
        metadata: ObjectMeta {
            generate_name: Some(GENERATE_NAME.to_owned()),
            namespace: Some(ns.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(challenge)?]),
            ..ObjectMeta::default()
        },
        spec: HttpRouteSpec {
            parent_refs: solver.parent_refs.clone(),
            hostnames: ingress_host(&challenge.spec.dns_name).map(|h| vec![h]),
            rules: Some(vec![HttpRouteRule {
                matches: Some(vec![HttpRouteMatch {
                    path: Some(HttpPathMatch {
                        type_: Some("Exact".to_owned()),
                        value: Some(challenge_path(&challenge.spec.token)),
                    }),
                }]),
                backend_refs: Some(vec![HttpBackendRef {
                    group: Some(String::new()),
                    kind: Some("Service".to_owned()),
                    name: service_name.to_owned(),
                    namespace: Some(ns),
                    port: Some(SOLVER_PORT),
                }]),
            }]),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(dns_name: &str) -> Challenge {
        let mut c: Challenge = serde_json::from_value(serde_json::json!({
            "apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge",
            "metadata": {"name": "ch", "namespace": "apps", "uid": "u1"},
            "spec": {"url": "u", "authorizationURL": "a", "dnsName": dns_name, "type": "HTTP-01",
                     "token": "tok", "key": "tok.thumb", "wildcard": false,
                     "issuerRef": {"name": "i"},
                     "solver": {"http01": {"gatewayHTTPRoute": {
                        "labels": {"team": "web"},
                        "parentRefs": [{"name": "gw", "kind": "Gateway"}]}}}}
        }))
        .unwrap();
        c.metadata.namespace = Some("apps".into());
        c
    }

    #[test]
    fn the_route_sends_the_exact_token_path_to_the_solver_service() {
        let route = build_httproute(
            &challenge("a.example.com"),
            &Http01Settings::new("img"),
            "cm-acme-http-solver-x",
        )
        .unwrap();
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(json["kind"], "HTTPRoute");
        assert_eq!(json["metadata"]["generateName"], "cm-acme-http-solver-");
        assert_eq!(json["metadata"]["labels"]["team"], "web");
        assert_eq!(
            json["metadata"]["labels"]["acme.cert-manager.io/http01-solver"],
            "true"
        );
        assert_eq!(json["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(
            json["spec"]["parentRefs"],
            serde_json::json!([{"name": "gw", "kind": "Gateway"}])
        );
        assert_eq!(
            json["spec"]["hostnames"],
            serde_json::json!(["a.example.com"])
        );
        assert_eq!(
            json["spec"]["rules"],
            serde_json::json!([{
                "matches": [{"path": {"type": "Exact", "value": "/.well-known/acme-challenge/tok"}}],
                "backendRefs": [{"group": "", "kind": "Service", "name": "cm-acme-http-solver-x",
                                 "namespace": "apps", "port": 8089}]
            }])
        );
    }

    #[test]
    fn ip_identifiers_get_no_hostnames() {
        let route =
            build_httproute(&challenge("192.0.2.1"), &Http01Settings::new("img"), "s").unwrap();
        assert_eq!(route.spec.hostnames, None);
    }
}
