//! `Set-Cookie` values. Every cookie we set is HttpOnly, SameSite=Lax, Path=/, Secure unless turned off
//! for plain-http development, with the configured Domain; clearing uses the very same attributes, or
//! the browser would keep the original.

use alloc::format;
use alloc::string::String;

/// The attributes shared by all our cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    /// `Secure`.
    pub secure: bool,
    /// `Domain`, for single sign-on across subdomains.
    pub domain: Option<String>,
}

impl CookieAttributes {
    /// `name=value` with our attributes, `Path=/` and `Max-Age`.
    #[must_use]
    pub fn set(&self, name: &str, value: &str, max_age: u64) -> String {
        self.set_at(name, value, max_age, "/")
    }

    /// The same with another `Path`.
    #[must_use]
    pub fn set_at(&self, name: &str, value: &str, max_age: u64, path: &str) -> String {
        format!(
            "{name}={value}; Path={path}; Max-Age={max_age}{}",
            self.suffix()
        )
    }

    /// Deletes cookie `name` set with `Path=/` (empty value, `Max-Age=0`, expired date).
    #[must_use]
    pub fn clear(&self, name: &str) -> String {
        self.clear_at(name, "/")
    }

    /// Deletes a cookie set with another `Path` (a browser only deletes on an exact path match).
    #[must_use]
    pub fn clear_at(&self, name: &str, path: &str) -> String {
        format!(
            "{name}=; Path={path}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{}",
            self.suffix()
        )
    }

    fn suffix(&self) -> String {
        let mut s = String::from("; HttpOnly");
        if self.secure {
            s.push_str("; Secure");
        }
        s.push_str("; SameSite=Lax");
        if let Some(d) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(d);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_clear_carry_the_same_attributes() {
        let a = CookieAttributes {
            secure: true,
            domain: Some(String::from(".example.com")),
        };
        assert_eq!(
            a.set("_pc", "v", 60),
            "_pc=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax; Domain=.example.com"
        );
        assert_eq!(
            a.clear("_pc"),
            "_pc=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax; Domain=.example.com"
        );
        let dev = CookieAttributes {
            secure: false,
            domain: None,
        };
        assert_eq!(
            dev.set("a", "b", 1),
            "a=b; Path=/; Max-Age=1; HttpOnly; SameSite=Lax"
        );
    }
}
