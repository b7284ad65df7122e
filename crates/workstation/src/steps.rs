//! The steps of the definition the workstation does or follows, bound by
//! their effect once, when the workstation starts.

use egov_regulation::{Definition, DefinitionError, Effect, Step};

const PARTICIPANT: &str = "State Corporation workstation";

#[derive(Debug)]
pub(crate) struct Steps {
    /// Process 1.
    pub(crate) log_in: Step,
    /// Process 2.
    pub(crate) open_form: Step,
    /// Process 3.
    pub(crate) look_up: Step,
    /// Condition 1.
    pub(crate) data_present: Step,
    /// Process 4.
    pub(crate) data_notice: Step,
    /// Process 5.
    pub(crate) sign_submission: Step,
    /// Process 6.
    pub(crate) send_application: Step,
    /// Action 3, whose signer the workstation checks on the result.
    pub(crate) sign_result: Step,
    /// Process 9.
    pub(crate) issue_result: Step,
}

impl Steps {
    pub(crate) fn bind(definition: &Definition) -> Result<Steps, DefinitionError> {
        let bind = |effect| definition.bind(effect, PARTICIPANT);
        Ok(Steps {
            log_in: bind(Effect::LogIn)?,
            open_form: bind(Effect::OpenForm)?,
            look_up: bind(Effect::LookUp)?,
            data_present: bind(Effect::DataPresent)?,
            data_notice: bind(Effect::DataNotice)?,
            sign_submission: bind(Effect::SignSubmission)?,
            send_application: bind(Effect::SendApplication)?,
            sign_result: bind(Effect::SignResult)?,
            issue_result: bind(Effect::IssueResult)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_without_a_step_the_workstation_needs_is_refused_naming_it() {
        assert!(Steps::bind(Definition::default_definition()).is_ok());
        let text = egov_regulation::definition::DEFAULT_DEFINITION.replace("effect = \"issue-result\"\n", "");
        let definition = Definition::from_toml(&text).unwrap();
        let error = Steps::bind(&definition).unwrap_err();
        assert!(error.to_string().contains("issue-result") && error.to_string().contains("workstation"), "{error}");
        assert!(error.line > 0, "{error}");
    }
}
