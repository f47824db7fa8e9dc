//! What the examples share: where to talk to (the embedded emulator on virtual time, or Basiq's
//! real API when `BASIQ_API_KEY` is set), and the emulator's stand-in for the user's browser in
//! the Consent UI. Not part of the SDK: an application has a real user and a real browser.
#![allow(dead_code)] // each example uses a subset

use basiq::clock::ManualClock;
use basiq::ConsentLink;
use basiq_mock::MockServer;

/// Where an example runs.
pub struct Target {
    /// The embedded emulator, when no `BASIQ_API_KEY` is set.
    pub emulator: Option<(MockServer, ManualClock)>,
    pub api_key: String,
    pub base_url: String,
}

impl Target {
    /// The emulator on a virtual clock (its jobs progress as the SDK's waits advance the clock,
    /// so nothing really sleeps), unless `BASIQ_API_KEY` is set: then Basiq at `BASIQ_BASE_URL`
    /// (default `https://au-api.basiq.io`).
    pub fn from_env() -> Self {
        match std::env::var("BASIQ_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
        {
            Some(api_key) => Self {
                emulator: None,
                api_key,
                base_url: std::env::var("BASIQ_BASE_URL")
                    .unwrap_or_else(|_| basiq::DEFAULT_BASE_URL.to_string()),
            },
            None => {
                let clock = ManualClock::new(time::macros::datetime!(2026-01-05 10:00 UTC));
                let server = MockServer::builder().clock(clock.clone()).start();
                println!(
                    "(the embedded Basiq emulator at {}; set BASIQ_API_KEY for the real API)",
                    server.url()
                );
                Self {
                    api_key: server.api_key(),
                    base_url: server.url(),
                    emulator: Some((server, clock)),
                }
            }
        }
    }

    /// An async client builder for this target. On the emulator it shares the virtual clock and
    /// its sleep advances that clock.
    #[cfg(feature = "async")]
    pub fn async_builder(&self) -> basiq::ClientBuilder {
        let builder = basiq::Client::builder()
            .api_key(self.api_key.clone())
            .base_url(self.base_url.clone());
        match &self.emulator {
            None => builder,
            Some((server, clock)) => {
                let tick = clock.clone();
                builder
                    .consent_base_url(format!("{}/consent/home", server.url()))
                    .clock(clock.clone())
                    .sleep(move |d| {
                        tick.advance(d);
                        Box::pin(async {})
                    })
            }
        }
    }

    /// A blocking client builder for this target (see [`Target::async_builder`]).
    #[cfg(feature = "blocking")]
    pub fn blocking_builder(&self) -> basiq::blocking::ClientBuilder {
        let builder = basiq::blocking::Client::builder()
            .api_key(self.api_key.clone())
            .base_url(self.base_url.clone());
        match &self.emulator {
            None => builder,
            Some((server, clock)) => {
                let tick = clock.clone();
                builder
                    .consent_base_url(format!("{}/consent/home", server.url()))
                    .clock(clock.clone())
                    .sleep(move |d| tick.advance(d))
            }
        }
    }

    /// Moves the emulator's (and the clients') virtual clock on; nothing on the real API.
    pub fn advance(&self, by: std::time::Duration) {
        if let Some((_, clock)) = &self.emulator {
            clock.advance(by);
        }
    }

    /// What the user does in the Consent UI: open `link`, log in to their bank. On the emulator
    /// the login is posted to its Consent UI stand-in and the job ids of the redirect come back.
    /// On the real API a person has to do this: the link is printed and `None` returned.
    pub fn user_connects(
        &self,
        link: &ConsentLink,
        login: (&str, &str),
    ) -> Result<Option<Vec<String>>, Box<dyn std::error::Error>> {
        let Some((server, _)) = &self.emulator else {
            // The link holds a client token: show it to the user only, never in logs.
            println!(
                "Open the Consent UI and connect a bank: {}",
                link.expose_url()
            );
            return Ok(None);
        };
        let mut body = serde_json::Map::new();
        for (key, value) in link.expose_url().query_pairs() {
            body.insert(key.into_owned(), value.into_owned().into());
        }
        body.insert("loginId".into(), login.0.into());
        body.insert("password".into(), login.1.into());
        // A blocking call, also from the async examples: it stands in for a browser, not for
        // anything an application does.
        let response = match ureq::post(&format!("{}/consent/connect.json", server.url()))
            .send_json(serde_json::Value::Object(body))
        {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                let text = response.into_string()?;
                return Err(format!("the Consent UI refused the login: {status} {text}").into());
            }
            Err(e) => return Err(e.into()),
        };
        let answer: serde_json::Value = response.into_json()?;
        let ids = answer["jobIds"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(ids))
    }

    /// A new user with one connection, made as the connect_bank example shows: `client` creates
    /// the user and asks for a consent link, the user logs in (`login`) to the emulator's bank
    /// `AU00000`, and `follower` waits for the job (on the emulator, the client whose waits move
    /// the virtual clock). `None` on the real API, where a person has to open the link.
    #[cfg(feature = "async")]
    pub async fn connected_user(
        &self,
        client: &basiq::Client,
        follower: &basiq::Client,
        email: &str,
        login: (&str, &str),
    ) -> Result<Option<(basiq::id::UserId, basiq::JobReport)>, Box<dyn std::error::Error>> {
        let user = client
            .users()
            .create(basiq::models::NewUser {
                email: Some(email.into()),
                ..basiq::models::NewUser::default()
            })
            .await?
            .id;
        let action = basiq::ConsentAction::connect_to(basiq::id::InstitutionId::new("AU00000")?);
        let basiq::ConsentOutcome::Link(link) = client.consent_url(&user, action).await? else {
            return Err("expected a consent link for a new user".into());
        };
        let Some(jobs) = self.user_connects(&link, login)? else {
            return Ok(None); // real API: a person has to open the link
        };
        let job = jobs.first().ok_or("the consent answered no job")?;
        let report = follower
            .jobs()
            .wait(job.as_str(), basiq::jobs::PollConfig::default())
            .await?;
        Ok(Some((user, report)))
    }
}
