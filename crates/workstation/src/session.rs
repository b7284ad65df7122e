//! Process 1: the operator logs in to the workstation.

use egov_proto::{LoginRequest, LoginResponse};
use egov_runtime::Refusal;
use egov_store::Batch;
use serde::{Deserialize, Serialize};
use tonic::Code;

use crate::Workstation;

/// How long an operator's session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) operator_id: String,
    /// When process 1 happened (the simulated time on simulated time).
    pub(crate) logged_in_ms: i64,
    /// When the session ends, on the operational clock.
    pub(crate) expires_ms: i64,
}

fn session_key(session_id: &str) -> String {
    format!("session/{session_id}")
}

impl Workstation {
    pub(crate) async fn login(&self, request: LoginRequest) -> Result<LoginResponse, Refusal> {
        let context = self.receiver.context();
        let account = self.operators.authenticate(&request.login, &request.password).ok_or_else(|| {
            Refusal::new(Code::Unauthenticated, "workstation.bad_credentials", "login or password is wrong")
        })?;
        let now_ms =
            if context.message_time && request.client_time_ms > 0 { request.client_time_ms } else { context.now_ms() };
        let session = Session {
            operator_id: account.operator_id.clone(),
            logged_in_ms: now_ms,
            expires_ms: context.now_ms() + SESSION_TTL_MS,
        };
        let session_id = uuid::Uuid::new_v4().to_string();
        let mut batch = Batch::new();
        batch.put(session_key(&session_id), 0, &session)?;
        // Not flushed: a session lost in a crash only means logging in again, and
        // the next flushed commit of this store (the form it opens) makes it durable.
        self.store.commit_unflushed(batch).await?;
        tracing::info!(operator = %account.operator_id, "operator logged in (process 1)");
        Ok(LoginResponse { session_id, operator_id: session.operator_id, expires_time_ms: session.expires_ms })
    }

    /// The operator's session, checked to be `operator_id`'s and alive.
    pub(crate) fn session(&self, session_id: &str, operator_id: &str) -> Result<Session, Refusal> {
        let unauthenticated = |message: String| Refusal::new(Code::Unauthenticated, "workstation.bad_session", message);
        let session = self
            .store
            .get::<Session>(&session_key(session_id))?
            .ok_or_else(|| unauthenticated(format!("no session {session_id}: log in first (process 1)")))?
            .value;
        if session.operator_id != operator_id {
            return Err(unauthenticated(format!("session {session_id} is not {operator_id}'s")));
        }
        if session.expires_ms <= self.receiver.context().now_ms() {
            return Err(unauthenticated(format!("session {session_id} has expired: log in again")));
        }
        Ok(session)
    }
}
