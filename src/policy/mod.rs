//! Rego policy: bundles compiled once with regorus, evaluated per message. (In progress:
//! identity-and-policy issue.)
