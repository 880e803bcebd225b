//! The `cert-manager.io/*` annotations cert-manager writes on a certificate Secret; the Ingress
//! and Gateway shims read the same names (issuer kind and group, subject and SANs).

pub const CERTIFICATE_NAME: &str = "cert-manager.io/certificate-name";
pub const ISSUER_NAME: &str = "cert-manager.io/issuer-name";
pub const ISSUER_KIND: &str = "cert-manager.io/issuer-kind";
pub const ISSUER_GROUP: &str = "cert-manager.io/issuer-group";
pub const COMMON_NAME: &str = "cert-manager.io/common-name";
pub const ALT_NAMES: &str = "cert-manager.io/alt-names";
pub const IP_SANS: &str = "cert-manager.io/ip-sans";
pub const URI_SANS: &str = "cert-manager.io/uri-sans";
pub const EMAIL_SANS: &str = "cert-manager.io/email-sans";
pub const SUBJECT_ORGANIZATIONS: &str = "cert-manager.io/subject-organizations";
pub const SUBJECT_ORGANIZATIONAL_UNITS: &str = "cert-manager.io/subject-organizationalunits";
pub const SUBJECT_COUNTRIES: &str = "cert-manager.io/subject-countries";
pub const SUBJECT_PROVINCES: &str = "cert-manager.io/subject-provinces";
pub const SUBJECT_LOCALITIES: &str = "cert-manager.io/subject-localities";
pub const SUBJECT_POSTAL_CODES: &str = "cert-manager.io/subject-postalcodes";
pub const SUBJECT_STREET_ADDRESSES: &str = "cert-manager.io/subject-streetaddresses";
pub const SUBJECT_SERIAL_NUMBER: &str = "cert-manager.io/subject-serialnumber";
