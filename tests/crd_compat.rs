//! certsmith's CRDs against cert-manager v1.21.1's published CRDs: every property path of
//! theirs exists in ours with a compatible type, and the names, columns, scope, subresources and
//! selectable fields a user or tool sees are the same. cert-manager's CRDs come from its Go module
//! (`deploy/crds/`), downloaded through the Go module proxy by `e2e/tools.sh crds`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn cert_manager_crds() -> Vec<Value> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(repo.join("e2e/tools.sh"))
        .arg("crds")
        .output()
        .expect("run e2e/tools.sh crds");
    assert!(
        out.status.success(),
        "e2e/tools.sh crds failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let dir = bin.join("cert-manager-crds");
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("cert-manager CRD directory") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let crd: Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
            crds.push(crd);
        }
    }
    assert_eq!(
        crds.len(),
        6,
        "cert-manager ships six CRDs in {}",
        dir.display()
    );
    crds
}

fn ours() -> Vec<Value> {
    certsmith::crds::all()
        .iter()
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect()
}

fn find<'a>(crds: &'a [Value], name: &str) -> &'a Value {
    crds.iter()
        .find(|c| c["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("certsmith has no CRD {name}"))
}

fn v1(crd: &Value) -> &Value {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .expect("a v1 version")
}

/// The JSON-schema type of a node, folding the int-or-string extension into one name.
fn type_of(schema: &Value) -> String {
    if schema["x-kubernetes-int-or-string"] == true {
        return "int-or-string".into();
    }
    match &schema["type"] {
        Value::String(t) => t.clone(),
        _ if schema["x-kubernetes-preserve-unknown-fields"] == true => "any".into(),
        _ => "none".into(),
    }
}

/// Types whose values cert-manager accepts and ours accepts as well.
fn compatible(theirs: &str, ours: &str) -> bool {
    theirs == ours || ours == "any" || (theirs == "integer" && ours == "number")
}

/// Walks cert-manager's schema and records every path ours lacks or types incompatibly.
fn compare(path: &str, theirs: &Value, ours: &Value, problems: &mut Vec<String>) {
    let (t, o) = (type_of(theirs), type_of(ours));
    if !compatible(&t, &o) {
        problems.push(format!("{path}: cert-manager has type {t}, certsmith {o}"));
        return;
    }
    if ours["x-kubernetes-preserve-unknown-fields"] == true && ours.get("properties").is_none() {
        // Ours keeps anything here, so every deeper path is accepted and preserved.
        return;
    }
    if let (Some(enum_theirs), Some(enum_ours)) =
        (theirs["enum"].as_array(), ours["enum"].as_array())
    {
        for value in enum_theirs.iter().filter(|v| !enum_ours.contains(v)) {
            problems.push(format!(
                "{path}: certsmith does not accept enum value {value}"
            ));
        }
    }
    if theirs["format"].is_string() && theirs["format"] != ours["format"] {
        problems.push(format!(
            "{path}: cert-manager has format {}, certsmith {}",
            theirs["format"], ours["format"]
        ));
    }
    if let Some(props) = theirs["properties"].as_object() {
        for (name, sub) in props {
            let child = format!("{path}.{name}");
            match ours["properties"].get(name) {
                Some(our_sub) => compare(&child, sub, our_sub, problems),
                None => problems.push(format!("{child}: missing in certsmith")),
            }
        }
    }
    if let Some(items) = theirs.get("items") {
        match ours.get("items") {
            Some(our_items) => compare(&format!("{path}[]"), items, our_items, problems),
            None => problems.push(format!("{path}[]: certsmith has no item schema")),
        }
    }
    if let Some(values) = theirs.get("additionalProperties").filter(|v| v.is_object()) {
        match ours.get("additionalProperties").filter(|v| v.is_object()) {
            Some(our_values) => compare(&format!("{path}{{}}"), values, our_values, problems),
            None => problems.push(format!("{path}{{}}: certsmith has no map value schema")),
        }
    }
    // A field cert-manager treats as optional must not be required by our schema, or manifests
    // written for cert-manager would be rejected.
    let required = |s: &Value| -> BTreeSet<String> {
        s["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for extra in required(ours).difference(&required(theirs)) {
        if STRICTER_THAN_CRD.contains(&(path, extra.as_str())) {
            continue;
        }
        problems.push(format!(
            "{path}.{extra}: required by certsmith but optional in cert-manager"
        ));
    }
}

/// Fields cert-manager's CRD leaves optional but its admission webhook rejects when missing;
/// certsmith has no webhook, so its schema requires them.
const STRICTER_THAN_CRD: &[(&str, &str)] = &[
    ("certificates.cert-manager.io", "spec"),
    ("certificaterequests.cert-manager.io", "spec"),
];

#[test]
fn every_cert_manager_property_path_exists_in_ours_with_a_compatible_type() {
    let theirs = cert_manager_crds();
    let ours = ours();
    let mut problems = Vec::new();
    let mut paths = 0usize;
    for crd in &theirs {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let schema_theirs = &v1(crd)["schema"]["openAPIV3Schema"];
        let schema_ours = &v1(find(&ours, name))["schema"]["openAPIV3Schema"];
        paths += count_paths(schema_theirs);
        compare(name, schema_theirs, schema_ours, &mut problems);
    }
    assert!(paths > 1000, "walked only {paths} property paths");
    assert!(
        problems.is_empty(),
        "{} incompatibilities with cert-manager v1.21.1:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn count_paths(schema: &Value) -> usize {
    let props = schema["properties"]
        .as_object()
        .map_or(0, |p| p.values().map(|s| 1 + count_paths(s)).sum::<usize>());
    let items = schema.get("items").map_or(0, count_paths);
    let values = schema
        .get("additionalProperties")
        .filter(|v| v.is_object())
        .map_or(0, count_paths);
    props + items + values
}

#[test]
fn names_scope_columns_subresources_and_selectable_fields_match() {
    let theirs = cert_manager_crds();
    let ours = ours();
    assert_eq!(ours.len(), theirs.len());
    for crd in &theirs {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let mine = find(&ours, name);
        for field in ["group", "scope"] {
            assert_eq!(
                mine["spec"][field], crd["spec"][field],
                "{name}: spec.{field}"
            );
        }
        for field in [
            "kind",
            "listKind",
            "plural",
            "singular",
            "shortNames",
            "categories",
        ] {
            assert_eq!(
                mine["spec"]["names"][field], crd["spec"]["names"][field],
                "{name}: spec.names.{field}"
            );
        }
        let (v_theirs, v_ours) = (v1(crd), v1(mine));
        assert_eq!(v_ours["served"], true, "{name}: served");
        assert_eq!(v_ours["storage"], true, "{name}: storage");
        assert_eq!(
            v_ours["subresources"], v_theirs["subresources"],
            "{name}: subresources"
        );
        assert_eq!(
            v_ours["selectableFields"], v_theirs["selectableFields"],
            "{name}: selectableFields"
        );
        let columns = |v: &Value| -> Vec<(Value, Value, Value, Value)> {
            v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| {
                            (
                                c["name"].clone(),
                                c["type"].clone(),
                                c["jsonPath"].clone(),
                                c.get("priority").cloned().unwrap_or(Value::from(0)),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            columns(v_ours),
            columns(v_theirs),
            "{name}: printer columns"
        );
    }
}
