//! The controller is killed in the middle of an issuance; the next one resumes from the persisted
//! Order and Challenge objects and never creates a second ACME order. Its own test binary, so it
//! has a control plane and a controller to itself.

mod common;

use std::time::Duration;

use certsmith::api::certificate::Certificate;
use certsmith::api::challenge::Challenge;
use certsmith::api::issuer::Issuer;
use certsmith::api::order::Order;
use certsmith_e2e::stack::Stack;
use common::*;
use kube::api::{Api, ListParams};
use serde_json::json;

#[tokio::test]
async fn killed_mid_issuance_resumes_without_a_second_order() {
    let stack = Stack::shared(env!("CARGO_BIN_EXE_certsmith"));
    let cp = stack.control_plane();
    let client = cp.client().await.unwrap();
    let ns = cp.create_namespace("restart").await.unwrap();
    let host = format!("restart.{ns}.certsmith.test");
    // Until the A record is cleared the self-check cannot pass, which holds the issuance at the
    // challenge step while the controller is killed.
    cp.challtestsrv()
        .add_a(&format!("{host}."), &["127.0.0.3"])
        .await
        .unwrap();
    let issuers: Api<Issuer> = Api::namespaced(client.clone(), &ns);
    let spec = acme_spec(
        &cp.pebble().directory_url(),
        cp.pebble().ca_pem(),
        "account",
    );
    create(&issuers, json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "pebble"}, "spec": spec})).await;
    let certs: Api<Certificate> = Api::namespaced(client.clone(), &ns);
    create(&certs, json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "restart"},
        "spec": {"secretName": "restart-tls", "dnsNames": [host], "issuerRef": {"name": "pebble"}}})).await;

    let orders: Api<Order> = Api::namespaced(client.clone(), &ns);
    let challenges: Api<Challenge> = Api::namespaced(client.clone(), &ns);
    let deadline = std::time::Instant::now() + ISSUANCE_TIMEOUT;
    let (order_name, order_url) = loop {
        let list = orders.list(&ListParams::default()).await.unwrap().items;
        let with_url = list
            .iter()
            .find(|o| o.status.as_ref().and_then(|s| s.url.as_ref()).is_some());
        let challenge_count = challenges
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
        if let Some(o) = with_url.filter(|_| challenge_count > 0) {
            break (
                o.metadata.name.clone().unwrap(),
                o.status.as_ref().unwrap().url.clone().unwrap(),
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ACME order was created"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    stack.kill_controller();
    cp.challtestsrv()
        .post("/clear-a", json!({"host": format!("{host}.")}))
        .await
        .unwrap();
    stack.start_controller().unwrap();

    wait_for(
        &certs,
        "restart",
        ISSUANCE_TIMEOUT,
        "Ready=True after the restart",
        is_ready,
    )
    .await;
    let list = orders.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1, "one Order object");
    assert_eq!(list[0].metadata.name.as_deref(), Some(order_name.as_str()));
    assert_eq!(
        list[0].status.as_ref().unwrap().url.as_deref(),
        Some(order_url.as_str()),
        "the same ACME order"
    );
    // The controller log names every ACME order it creates: exactly one.
    let created = stack
        .controller_log()
        .lines()
        .filter(|l| l.contains("ACME order created"))
        .count();
    assert_eq!(created, 1, "ACME orders created");
}
