//! `{prefix}/userinfo`: the signed-in user as JSON (oauth2-proxy's `/oauth2/userinfo`).

use std::vec::Vec;

use crate::decision::{Decision, Reason};
use crate::engine::Engine;
use crate::request::Request;
use crate::response;
use crate::time::UnixTime;
use crate::vm::VmState;

impl Engine {
    pub(crate) fn userinfo(&self, req: &Request<'_>, now: UnixTime, vm: &mut VmState) -> Decision {
        match self.any_session(req, now, vm).map(|(hit, _)| hit) {
            Some(hit) => {
                let s = &hit.identity;
                response::json(
                    200,
                    &serde_json::json!({
                        "user": s.user, "sub": s.sub, "email": s.email, "email_verified": s.email.is_some(),
                        "name": s.name, "preferred_username": s.preferred_username, "groups": s.groups,
                        "expires_at": hit.expires_at,
                    }),
                    Vec::new(),
                    Reason::UserInfo,
                )
            }
            None => self.login_required(req, "/"),
        }
    }
}
