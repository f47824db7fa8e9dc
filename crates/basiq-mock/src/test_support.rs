//! Test support (feature `test-support`): what a user does in Basiq's Consent UI, done for them,
//! so an app's own tests can connect a bank in one line instead of driving the stand-in's form
//! over HTTP.

use crate::consent::{client_user, connect, ConsentForm};
use crate::{MockError, MockServer};

impl MockServer {
    /// Completes the Consent UI for the user a consent link was made for, as their browser
    /// would: `consent_url` is the link's URL with its client token (with the `basiq` crate,
    /// `link.expose_url().as_str()` of a `ConsentOutcome::Link`), `login` the bank login
    /// (`Some(("jared", "django"))` for Hooli; `None` for open banking, which needs none).
    /// Returns the ids of the jobs started — what Basiq's redirect would carry in `jobIds` —
    /// to follow with `jobs().wait`.
    ///
    /// Refused like the stand-in's form: an expired or wrong token, an unknown user, action or
    /// institution is a [`MockError`] with the status the form would answer.
    ///
    /// ```
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = basiq_mock::MockServer::start();
    /// // … `consent_url` from the client's `consent_url(user, ConsentAction::connect_to(..))` …
    /// # let consent_url = String::new();
    /// # if !consent_url.is_empty() {
    /// let jobs = server.complete_consent(&consent_url, Some(("jared", "django")))?;
    /// # let _ = jobs;
    /// # }
    /// # Ok(())
    /// # }
    /// ```
    pub fn complete_consent(
        &self,
        consent_url: &str,
        login: Option<(&str, &str)>,
    ) -> Result<Vec<String>, MockError> {
        let query = consent_url.split_once('?').map_or("", |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        let mut form: ConsentForm = serde_urlencoded::from_str(query).map_err(|e| MockError {
            status: 400,
            code: "parameter-not-valid".into(),
            detail: format!("consent URL query: {e}"),
        })?;
        if let Some((login_id, password)) = login {
            form.login_id = Some(login_id.to_owned());
            form.password = Some(password.to_owned());
        }
        let user_id = client_user(&self.state, form.token.as_deref()).map_err(MockError::from)?;
        let now = self.state.now();
        let job = connect(&mut self.state.db(), now, &user_id, &form).map_err(MockError::from)?;
        Ok(vec![job])
    }
}
