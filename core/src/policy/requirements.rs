//! Requirements on a route: all must hold for an authenticated caller to be let through. Nothing here is
//! a regular expression: configuration strings are compared as strings.

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use crate::identity::Identity;

/// Which requirement failed (for the 403 body, logs and metrics; never holds caller data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// The email's domain is not one of `email_domains`.
    EmailDomain,
    /// The email is not one of `emails`.
    Email,
    /// None of `groups`.
    Group,
    /// A scope of `scopes` / `scopes_by_method` is missing.
    Scope,
    /// A claim condition does not hold.
    Claim,
}

impl Requirement {
    /// Stable code, prefixed `forbidden_`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Requirement::EmailDomain => "forbidden_email_domain",
            Requirement::Email => "forbidden_email",
            Requirement::Group => "forbidden_group",
            Requirement::Scope => "forbidden_scope",
            Requirement::Claim => "forbidden_claim",
        }
    }

    /// The configuration field that names it.
    #[must_use]
    pub fn field(self) -> &'static str {
        match self {
            Requirement::EmailDomain => "email_domains",
            Requirement::Email => "emails",
            Requirement::Group => "groups",
            Requirement::Scope => "scopes",
            Requirement::Claim => "claims",
        }
    }
}

/// A failed requirement and, where it helps the caller, the configured value it lacked (a scope name,
/// a claim path: configuration, never caller data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// Which requirement.
    pub requirement: Requirement,
    /// The missing scope, or the claim path.
    pub detail: Option<String>,
}

/// A test on one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimTest {
    /// The claim equals this value (strings, numbers and booleans compare as JSON values).
    Equals(Value),
    /// The claim equals one of these.
    OneOf(Vec<Value>),
    /// The claim is an array holding this value, or equals it.
    Contains(Value),
}

/// A condition on a claim path (`realm_access.roles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCondition {
    /// The claim path.
    pub claim: String,
    /// The test.
    pub test: ClaimTest,
}

/// Everything a route requires. Empty lists require nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Lower-case domains: `example.com` exactly, `.example.com` any subdomain of it.
    pub email_domains: Vec<String>,
    /// Lower-case email addresses.
    pub emails: Vec<String>,
    /// Any one of these groups.
    pub groups: Vec<String>,
    /// All of these scopes.
    pub scopes: Vec<String>,
    /// All of the scopes listed for the request's method; a method not listed falls to `*`, and without
    /// a `*` entry is refused.
    pub scopes_by_method: Vec<(String, Vec<String>)>,
    /// All of these claim conditions.
    pub claims: Vec<ClaimCondition>,
}

impl Requirements {
    /// True when nothing is required.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.email_domains.is_empty()
            && self.emails.is_empty()
            && self.groups.is_empty()
            && self.scopes.is_empty()
            && self.scopes_by_method.is_empty()
            && self.claims.is_empty()
    }

    /// Checks every requirement; the first that fails is returned.
    pub fn check(&self, id: &Identity, method: &str) -> Result<(), Unmet> {
        let unmet = |requirement, detail: Option<&str>| Unmet {
            requirement,
            detail: detail.map(String::from),
        };
        if !self.email_domains.is_empty() || !self.emails.is_empty() {
            let email = id.email.as_deref().and_then(normal_email);
            if !self.email_domains.is_empty() {
                let ok = email.as_ref().is_some_and(|(_, domain)| {
                    self.email_domains.iter().any(|d| domain_matches(domain, d))
                });
                if !ok {
                    return Err(unmet(Requirement::EmailDomain, None));
                }
            }
            if !self.emails.is_empty() {
                let ok = email
                    .as_ref()
                    .is_some_and(|(full, _)| self.emails.iter().any(|e| e == full));
                if !ok {
                    return Err(unmet(Requirement::Email, None));
                }
            }
        }
        if !self.groups.is_empty() && !self.groups.iter().any(|g| id.groups.contains(g)) {
            return Err(unmet(Requirement::Group, None));
        }
        for s in &self.scopes {
            if !id.scopes.contains(s) {
                return Err(unmet(Requirement::Scope, Some(s)));
            }
        }
        if !self.scopes_by_method.is_empty() {
            let listed = self
                .scopes_by_method
                .iter()
                .find(|(m, _)| m == method)
                .or_else(|| self.scopes_by_method.iter().find(|(m, _)| m == "*"));
            let Some((_, needed)) = listed else {
                return Err(unmet(Requirement::Scope, None));
            };
            for s in needed {
                if !id.scopes.contains(s) {
                    return Err(unmet(Requirement::Scope, Some(s)));
                }
            }
        }
        for c in &self.claims {
            let v = id.claims.get(&c.claim);
            let ok = match (&c.test, v) {
                (_, None) => false,
                (ClaimTest::Equals(want), Some(v)) => v == want,
                (ClaimTest::OneOf(set), Some(v)) => set.contains(v),
                (ClaimTest::Contains(want), Some(Value::Array(a))) => a.contains(want),
                (ClaimTest::Contains(want), Some(v)) => v == want,
            };
            if !ok {
                return Err(unmet(Requirement::Claim, Some(&c.claim)));
            }
        }
        Ok(())
    }
}

/// `(whole address, domain)`, lower-cased, if the address has exactly one `@` with something on both
/// sides and no character that has no place in an address (whitespace, controls, quotes, brackets).
#[must_use]
pub fn normal_email(email: &str) -> Option<(String, String)> {
    let lower = email.to_ascii_lowercase();
    let (local, domain) = lower.split_once('@')?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || "@\"<>()[],;:\\".contains(c);
    if local.is_empty()
        || domain.is_empty()
        || local.chars().any(bad)
        || domain.chars().any(bad)
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return None;
    }
    let domain = String::from(domain);
    Some((lower, domain))
}

/// `entry` `example.com` matches that domain only; `.example.com` matches any subdomain of it.
fn domain_matches(domain: &str, entry: &str) -> bool {
    match entry.strip_prefix('.') {
        Some(parent) => domain
            .strip_suffix(parent)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => domain == entry,
    }
}
