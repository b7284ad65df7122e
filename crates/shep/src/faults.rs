//! Refusals on the SHEP face: a stable code (`shep.*`, or the gRPC reason
//! code where it means the same), the detail, and whether the fault is the
//! client's or the server's. `errorMessage` is said in the caller's language
//! (`lang` property: kk, ru, en; else ru) from a small table per family of
//! codes; the code itself never changes with the language.

use chrono::{DateTime, FixedOffset};
use tonic::{Code, Status};

use crate::wire::{ErrorInfo, OperationName, WireError};

/// A refusal to write as a SOAP Fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The stable code (`errorCode`), listed in docs/envelope.md.
    pub code: String,
    /// What was wrong, in English (`errorData`).
    pub detail: String,
    /// `soap:Server` (try again later) rather than `soap:Client` (the request is wrong).
    pub server: bool,
    /// The operation, when known: its fault element is used.
    pub operation: Option<OperationName>,
}

impl Fault {
    pub fn client(code: &str, detail: impl Into<String>) -> Fault {
        Fault { code: code.to_owned(), detail: detail.into(), server: false, operation: None }
    }

    pub fn server(code: &str, detail: impl Into<String>) -> Fault {
        Fault { code: code.to_owned(), detail: detail.into(), server: true, operation: None }
    }

    /// For the operation `operation`, unless one was named already.
    pub fn of(mut self, operation: OperationName) -> Fault {
        self.operation.get_or_insert(operation);
        self
    }

    /// A status of a participant: its reason code, soap:Server where it may pass.
    pub fn from_status(status: &Status) -> Fault {
        let code = egov_runtime::reason_of(status)
            .map(str::to_owned)
            .or_else(|| status.message().split_once(": ").map(|(code, _)| code.to_owned()).filter(|c| c.contains('.')))
            .unwrap_or_else(|| "shep.gateway_unreachable".to_owned());
        let detail = status.message().to_owned();
        let server = matches!(
            status.code(),
            Code::Unavailable | Code::Internal | Code::DeadlineExceeded | Code::Unknown | Code::DataLoss
        ) || egov_runtime::reason_of(status).is_none();
        Fault { code, detail, server, operation: None }
    }

    pub fn from_refusal(refusal: &egov_runtime::Refusal) -> Fault {
        Fault::from_status(&Status::from(refusal.clone()))
    }

    /// `soap:Client` or `soap:Server`.
    pub fn faultcode(&self) -> &'static str {
        match (self.code.as_str(), self.server) {
            ("shep.must_understand", _) => "soap:MustUnderstand",
            (_, true) => "soap:Server",
            (_, false) => "soap:Client",
        }
    }

    /// The fault's `ErrorInfo` in `lang`.
    pub fn error_info(&self, lang: Lang, at: DateTime<FixedOffset>, session_id: &str) -> ErrorInfo {
        ErrorInfo {
            error_code: self.code.clone(),
            error_message: message(&self.code, lang).to_owned(),
            error_data: Some(self.detail.clone()),
            error_date: at,
            sub_error: None,
            session_id: Some(session_id.to_owned()),
        }
    }
}

impl From<WireError> for Fault {
    fn from(error: WireError) -> Fault {
        Fault { code: error.code.to_owned(), detail: error.message, server: false, operation: error.operation }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// The languages of `errorMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    Kk,
    #[default]
    Ru,
    En,
}

impl Lang {
    /// The `lang` property's value (`kk`, `ru`, `en`, any case); else Russian.
    pub fn parse(value: Option<&str>) -> Lang {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("kk" | "kz") => Lang::Kk,
            Some("en") => Lang::En,
            _ => Lang::Ru,
        }
    }
}

/// `errorMessage` for `code` in `lang`: one text per family of codes.
pub fn message(code: &str, lang: Lang) -> &'static str {
    let [kk, ru, en] = family(code);
    match lang {
        Lang::Kk => kk,
        Lang::Ru => ru,
        Lang::En => en,
    }
}

fn family(code: &str) -> [&'static str; 3] {
    const AUTH: [&str; 3] = [
        "Жіберушінің түпнұсқалығы расталмады",
        "Ошибка аутентификации отправителя",
        "The sender could not be authenticated",
    ];
    const FORMAT: [&str; 3] = [
        "Хабарлама форматқа сәйкес келмейді",
        "Сообщение не соответствует формату",
        "The message does not match the format",
    ];
    const SERVICE: [&str; 3] = [
        "Сервис жоқ немесе қолжетімсіз",
        "Сервис не существует или недоступен",
        "The service does not exist or is not available",
    ];
    const ACCESS: [&str; 3] = ["Қол жеткізуге тыйым салынған", "Доступ запрещён", "Access is denied"];
    const DUPLICATE: [&str; 3] = [
        "Осы идентификатормен хабарлама бұрын алынған",
        "Сообщение с таким идентификатором уже получено",
        "A message with this id was received already",
    ];
    const NOT_FOUND: [&str; 3] = [
        "Хабарлама немесе хабарламалар тізбегі табылмады",
        "Сообщение или цепочка сообщений не найдены",
        "The message or the chain of messages was not found",
    ];
    const SIGNATURE: [&str; 3] = ["Қолтаңба жарамсыз", "Подпись недействительна", "The signature is not valid"];
    const INTERNAL: [&str; 3] =
        ["Ішкі қате, кейінірек қайталаңыз", "Внутренняя ошибка, повторите позже", "Internal error, try again later"];
    const REFUSED: [&str; 3] = ["Хабарлама қабылданбады", "Сообщение отклонено", "The message was refused"];
    match code {
        "shep.unknown_sender" | "shep.bad_password" => AUTH,
        "shep.unsigned" | "shep.bad_security" | "shep.not_allowed_to_sign" => SIGNATURE,
        "shep.unknown_service" | "shep.wrong_channel" | "shep.wrong_endpoint" => SERVICE,
        "shep.duplicate_message_id" | "envelope.replayed_message_id" => DUPLICATE,
        "shep.unknown_chain" | "shep.unknown_message" => NOT_FOUND,
        "access.denied" => ACCESS,
        "shep.gateway_unreachable" => INTERNAL,
        _ if code.starts_with("shep.") => FORMAT,
        _ if code.starts_with("envelope.bad_signature") || code.starts_with("trust.") => SIGNATURE,
        _ if code.starts_with("gateway.") => SERVICE,
        _ if code.starts_with("store.") || code == "envelope.bad_answer" => INTERNAL,
        _ => REFUSED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_follows_the_language_and_the_code_does_not() {
        let fault = Fault::client("shep.bad_password", "wrong password for sender x");
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T10:00:00+05:00").unwrap_or_default();
        let ru = fault.error_info(Lang::parse(None), at, "{s}");
        let kk = fault.error_info(Lang::parse(Some("KK")), at, "{s}");
        let en = fault.error_info(Lang::parse(Some("en")), at, "{s}");
        assert_eq!((ru.error_code.as_str(), kk.error_code.as_str()), ("shep.bad_password", "shep.bad_password"));
        assert_eq!(ru.error_message, "Ошибка аутентификации отправителя");
        assert_eq!(en.error_message, "The sender could not be authenticated");
        assert_ne!(kk.error_message, ru.error_message);
        assert_eq!(fault.faultcode(), "soap:Client");
    }

    #[test]
    fn a_status_becomes_its_reason_code_server_side_when_it_may_pass() {
        let refused = Status::from(egov_runtime::Refusal::new(Code::PermissionDenied, "access.denied", "no"));
        let fault = Fault::from_status(&refused);
        assert_eq!((fault.code.as_str(), fault.faultcode()), ("access.denied", "soap:Client"));
        let down = Status::from(egov_runtime::Refusal::new(Code::Unavailable, "gateway.recipient_unavailable", "x"));
        assert_eq!(Fault::from_status(&down).faultcode(), "soap:Server");
        let unreachable = Status::unavailable("connection refused");
        let fault = Fault::from_status(&unreachable);
        assert_eq!((fault.code.as_str(), fault.faultcode()), ("shep.gateway_unreachable", "soap:Server"));
    }
}
