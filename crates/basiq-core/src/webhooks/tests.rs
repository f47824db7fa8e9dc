use super::*;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

// Known-answer vectors, computed independently of this crate with Python's standard library
// (2026-11-25, Python 3):
//
//   python3 -c 'import hmac,hashlib,base64
//   def sign(secret, i, ts, body):
//       key = base64.b64decode(secret.split("_", 1)[1])
//       mac = hmac.new(key, f"{i}.{ts}.".encode() + body, hashlib.sha256).digest()
//       return "v1," + base64.b64encode(mac).decode()
//   print(sign(SECRET, ID, TS, BODY))'
//
// The first vector is also the one Svix publishes for its scheme (Basiq's), and Python agrees.
const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SVIX_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SVIX_TS: i64 = 1_614_265_330;
const SVIX_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SVIX_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const TS: i64 = 1_732_543_200;
const BODY: &[u8] = br#"{"eventTypeId":"connection.created","eventId":"61d3a0f8-4c5e-4f7a-9d1b-2b8f3e0c9a11","links":{"event":"https://au-api.basiq.io/events/61d3a0f8-4c5e-4f7a-9d1b-2b8f3e0c9a11","eventEntity":"https://au-api.basiq.io/users/ea3a81/connections/8fce3b"}}"#;
const SIGNATURE: &str = "v1,xW+5fzVIKrckxxoxkIJhXzBH9RKEcoZnHNkO/NKoXkM=";

fn secret() -> WebhookSecret {
    WebhookSecret::new(SECRET).unwrap()
}

fn at(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts).unwrap()
}

fn headers(id: &str, ts: &str, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HEADER_ID, HeaderValue::from_str(id).unwrap());
    h.insert(HEADER_TIMESTAMP, HeaderValue::from_str(ts).unwrap());
    h.insert(HEADER_SIGNATURE, HeaderValue::from_str(signature).unwrap());
    h
}

fn basiq_headers() -> HeaderMap {
    headers(ID, &TS.to_string(), SIGNATURE)
}

#[test]
fn known_answer_vectors_computed_by_python() {
    let svix = WebhookSecret::new(SVIX_SECRET).unwrap();
    assert_eq!(sign(&svix, SVIX_ID, SVIX_TS, SVIX_BODY), SVIX_SIGNATURE);
    assert_eq!(sign(&secret(), ID, TS, BODY), SIGNATURE);
}

#[test]
fn a_basiq_message_verifies_and_parses() {
    let msg = verify(&secret(), &basiq_headers(), BODY, at(TS)).unwrap();
    assert_eq!(msg.event_type_id, EventType::ConnectionCreated);
    assert_eq!(msg.event_id, "61d3a0f8-4c5e-4f7a-9d1b-2b8f3e0c9a11");
    assert_eq!(
        msg.links.event,
        "https://au-api.basiq.io/events/61d3a0f8-4c5e-4f7a-9d1b-2b8f3e0c9a11"
    );
    assert_eq!(
        msg.links.event_entity,
        "https://au-api.basiq.io/users/ea3a81/connections/8fce3b"
    );
    // The same through the string entry point.
    let parts = Verifier::new()
        .verify_parts(&secret(), ID, &TS.to_string(), SIGNATURE, BODY, at(TS))
        .unwrap();
    assert_eq!(parts, msg);
}

#[test]
fn tampered_body_id_or_timestamp_is_rejected() {
    let s = secret();
    let mut body = BODY.to_vec();
    body[20] ^= 1;
    assert_eq!(
        verify(&s, &basiq_headers(), &body, at(TS)),
        Err(WebhookError::NoValidSignature)
    );
    let h = headers("msg_other", &TS.to_string(), SIGNATURE);
    assert_eq!(
        verify(&s, &h, BODY, at(TS)),
        Err(WebhookError::NoValidSignature)
    );
    let h = headers(ID, &(TS + 1).to_string(), SIGNATURE);
    assert_eq!(
        verify(&s, &h, BODY, at(TS)),
        Err(WebhookError::NoValidSignature)
    );
    // Another secret.
    let other = WebhookSecret::new(SVIX_SECRET).unwrap();
    assert_eq!(
        verify(&other, &basiq_headers(), BODY, at(TS)),
        Err(WebhookError::NoValidSignature)
    );
}

#[test]
fn one_valid_signature_among_several_is_enough() {
    let wrong = sign(&WebhookSecret::new(SVIX_SECRET).unwrap(), ID, TS, BODY);
    for signature in [
        format!("{wrong} {SIGNATURE}"),
        format!("{SIGNATURE} {wrong}"),
        format!("v1,AAAA {wrong} {SIGNATURE} v1,not-base64!"),
    ] {
        let h = headers(ID, &TS.to_string(), &signature);
        assert!(verify(&secret(), &h, BODY, at(TS)).is_ok(), "{signature}");
    }
    let h = headers(ID, &TS.to_string(), &wrong);
    assert_eq!(
        verify(&secret(), &h, BODY, at(TS)),
        Err(WebhookError::NoValidSignature)
    );
}

#[test]
fn unknown_versions_are_ignored() {
    let tag = SIGNATURE.trim_start_matches("v1,");
    // The right tag under another version does not count…
    for signature in [format!("v2,{tag}"), format!("v1a,{tag}"), tag.to_owned()] {
        let h = headers(ID, &TS.to_string(), &signature);
        assert_eq!(
            verify(&secret(), &h, BODY, at(TS)),
            Err(WebhookError::NoValidSignature),
            "{signature}"
        );
    }
    // …and does not stop a v1 entry next to it from counting.
    let h = headers(
        ID,
        &TS.to_string(),
        &format!("v2,{tag} v1a,xyz {SIGNATURE}"),
    );
    assert!(verify(&secret(), &h, BODY, at(TS)).is_ok());
}

#[test]
fn tolerance_boundary_is_inclusive_in_whole_seconds() {
    let s = secret();
    let tolerance = 300;
    // Exactly ±5 minutes passes.
    assert!(verify(&s, &basiq_headers(), BODY, at(TS + tolerance)).is_ok());
    assert!(verify(&s, &basiq_headers(), BODY, at(TS - tolerance)).is_ok());
    // `now`'s fraction of a second is dropped: 300.999 s is still 300 s.
    let now = at(TS + tolerance) + time::Duration::milliseconds(999);
    assert!(verify(&s, &basiq_headers(), BODY, now).is_ok());
    // One second more is refused, with the skew.
    assert_eq!(
        verify(&s, &basiq_headers(), BODY, at(TS + tolerance + 1)),
        Err(WebhookError::TooOld {
            skew: Duration::from_secs(301)
        })
    );
    assert_eq!(
        verify(&s, &basiq_headers(), BODY, at(TS - tolerance - 1)),
        Err(WebhookError::TooNew {
            skew: Duration::from_secs(301)
        })
    );
}

#[test]
fn tolerance_is_configurable() {
    let strict = Verifier::new().with_tolerance(Duration::from_secs(10));
    assert_eq!(Verifier::default().tolerance(), DEFAULT_TOLERANCE);
    assert_eq!(strict.tolerance(), Duration::from_secs(10));
    assert!(strict
        .verify(&secret(), &basiq_headers(), BODY, at(TS + 10))
        .is_ok());
    assert!(matches!(
        strict.verify(&secret(), &basiq_headers(), BODY, at(TS + 11)),
        Err(WebhookError::TooOld { .. })
    ));
    // A replay an hour later fails even with a valid signature.
    assert!(matches!(
        verify(&secret(), &basiq_headers(), BODY, at(TS + 3600)),
        Err(WebhookError::TooOld { .. })
    ));
}

#[test]
fn missing_or_empty_headers_are_named() {
    for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
        let mut h = basiq_headers();
        h.remove(name);
        assert_eq!(
            verify(&secret(), &h, BODY, at(TS)),
            Err(WebhookError::MissingHeader(name))
        );
        h.insert(name, HeaderValue::from_static(""));
        assert_eq!(
            verify(&secret(), &h, BODY, at(TS)),
            Err(WebhookError::MissingHeader(name))
        );
    }
    assert_eq!(
        Verifier::new().verify_parts(&secret(), ID, "", SIGNATURE, BODY, at(TS)),
        Err(WebhookError::MissingHeader(HEADER_TIMESTAMP))
    );
}

#[test]
fn malformed_timestamps_are_invalid() {
    for ts in [
        "abc",
        "-1614265330",
        "+1732543200",
        " 1732543200",
        "1732543200.5",
        "99999999999999999999",
        "9999999999999999999", // fits i64, but no OffsetDateTime is that far away: TooNew
    ] {
        let h = headers(ID, ts, SIGNATURE);
        let err = verify(&secret(), &h, BODY, at(TS)).unwrap_err();
        assert!(
            matches!(
                err,
                WebhookError::InvalidTimestamp | WebhookError::TooNew { .. }
            ),
            "{ts}: {err:?}"
        );
    }
    assert_eq!(
        parse_timestamp(b"1732543200.5"),
        Err(WebhookError::InvalidTimestamp)
    );
}

#[test]
fn signed_junk_is_an_invalid_body_and_unknown_fields_are_ignored() {
    let s = secret();
    let signed = |body: &[u8]| headers(ID, &TS.to_string(), &sign(&s, ID, TS, body));
    let junk = b"not json";
    assert!(matches!(
        verify(&s, &signed(junk), junk, at(TS)),
        Err(WebhookError::InvalidBody(_))
    ));
    let extra = br#"{"eventTypeId":"consent.archived","eventId":"e1","userId":"u1","links":{"event":"e","eventEntity":"x","self":"s"}}"#;
    let msg = verify(&s, &signed(extra), extra, at(TS)).unwrap();
    assert_eq!(msg.event_type_id, EventType::ConsentArchived);
    let new_type = br#"{"eventTypeId":"payment.settled","eventId":"e2","links":{"event":"e","eventEntity":"x"}}"#;
    let msg = verify(&s, &signed(new_type), new_type, at(TS)).unwrap();
    assert_eq!(
        msg.event_type_id,
        EventType::Other("payment.settled".into())
    );
}

#[test]
fn every_documented_event_type_round_trips() {
    for name in [
        "user.created",
        "user.updated",
        "user.deleted",
        "connection.created",
        "connection.activated",
        "connection.invalidated",
        "connection.deleted",
        "consent.created",
        "consent.updated",
        "consent.revoked",
        "consent.expired",
        "consent.warning",
        "consent.reminder",
        "consent.archived",
        "account.updated",
        "transactions.updated",
    ] {
        let t = EventType::from(name);
        assert!(!matches!(t, EventType::Other(_)), "{name}");
        assert_eq!(t.as_str(), name);
    }
}

#[test]
fn bad_secrets_are_typed_errors() {
    for (raw, problem) in [
        (
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            SecretProblem::MissingPrefix,
        ),
        (
            "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            SecretProblem::MissingPrefix,
        ),
        ("", SecretProblem::MissingPrefix),
        ("whsec_not base64!", SecretProblem::NotBase64),
        ("whsec_", SecretProblem::Empty),
    ] {
        assert_eq!(
            WebhookSecret::new(raw).map(|_| ()),
            Err(WebhookError::BadSecret(problem)),
            "{raw}"
        );
    }
    // Whitespace around and missing padding are tolerated.
    let padded = WebhookSecret::new("whsec_dGVzdA==").unwrap();
    let unpadded: WebhookSecret = "  whsec_dGVzdA\n".parse().unwrap();
    assert_eq!(sign(&padded, "i", 1, b"b"), sign(&unpadded, "i", 1, b"b"));
}

#[test]
fn debug_and_display_never_show_the_secret_or_the_expected_signature() {
    let s = secret();
    let key_part = SECRET.trim_start_matches(SECRET_PREFIX);
    assert_eq!(format!("{s:?}"), "WebhookSecret([REDACTED])");
    let expected_tag = SIGNATURE.trim_start_matches("v1,");
    let mut body = BODY.to_vec();
    body[20] ^= 1;
    let attempts = [
        verify(&s, &basiq_headers(), &body, at(TS)),
        verify(&s, &basiq_headers(), BODY, at(TS + 3600)),
        verify(&s, &basiq_headers(), BODY, at(TS - 3600)),
        verify(&s, &headers(ID, "x", SIGNATURE), BODY, at(TS)),
        verify(&s, &HeaderMap::new(), BODY, at(TS)),
        WebhookSecret::new(&format!("{SECRET}!")).map(|_| unreachable!()),
        WebhookSecret::new(key_part).map(|_| unreachable!()),
    ];
    for err in attempts.into_iter().map(Result::unwrap_err) {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(key_part), "{text}");
            assert!(!text.contains(expected_tag), "{text}");
        }
    }
    let debug = format!("{:?}", Verifier::new());
    assert!(!debug.contains(key_part));
}

proptest! {
    #[test]
    fn verify_never_panics(
        id in proptest::collection::vec(any::<u8>(), 0..40),
        ts in proptest::collection::vec(any::<u8>(), 0..25),
        sig in proptest::collection::vec(any::<u8>(), 0..120),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        now in -10_000_000_000i64..10_000_000_000,
        tolerance in any::<u64>(),
    ) {
        let mut h = HeaderMap::new();
        for (name, value) in [(HEADER_ID, &id), (HEADER_TIMESTAMP, &ts), (HEADER_SIGNATURE, &sig)] {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                h.insert(name, v);
            }
        }
        let verifier = Verifier::new().with_tolerance(Duration::from_secs(tolerance));
        let now = at(now);
        let _ = verifier.verify(&secret(), &h, &body, now);
        let _ = verifier.verify_parts(
            &secret(),
            &String::from_utf8_lossy(&id),
            &String::from_utf8_lossy(&ts),
            &String::from_utf8_lossy(&sig),
            &body,
            now,
        );
    }

    #[test]
    fn arbitrary_secret_strings_never_panic(raw in ".{0,60}") {
        let _ = WebhookSecret::new(&raw);
        let _ = WebhookSecret::new(&format!("whsec_{raw}"));
    }

    #[test]
    fn sign_then_verify_round_trips(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        id in "msg_[A-Za-z0-9]{1,30}",
        key in proptest::collection::vec(any::<u8>(), 1..80),
        ts in 0i64..4_000_000_000,
        skew in -300i64..=300,
    ) {
        let secret = WebhookSecret::new(&format!("whsec_{}", STANDARD.encode(&key))).unwrap();
        let signature = sign(&secret, &id, ts, &body);
        let h = headers(&id, &ts.to_string(), &signature);
        match verify(&secret, &h, &body, at(ts + skew)) {
            // Arbitrary bytes are rarely a webhook message: the signature passed, the body did not.
            Ok(_) | Err(WebhookError::InvalidBody(_)) => {}
            Err(other) => prop_assert!(false, "{other:?}"),
        }
        // One flipped bit anywhere in the body breaks it.
        if !body.is_empty() {
            let mut tampered = body.clone();
            let i = (ts as usize) % tampered.len();
            tampered[i] ^= 1;
            prop_assert_eq!(
                verify(&secret, &h, &tampered, at(ts)),
                Err(WebhookError::NoValidSignature)
            );
        }
    }

    #[test]
    fn signed_messages_round_trip_to_the_same_message(
        event_type in "[a-z]{1,10}\\.[a-z]{1,10}",
        event_id in "[ -~]{0,40}",
        event in "[ -~]{0,60}",
        event_entity in "[ -~]{0,60}",
        ts in 0i64..4_000_000_000,
    ) {
        let message = WebhookMessage {
            event_type_id: EventType::from(event_type),
            event_id,
            links: WebhookLinks { event, event_entity },
        };
        let body = serde_json::to_vec(&message).unwrap();
        let h = headers(ID, &ts.to_string(), &sign(&secret(), ID, ts, &body));
        prop_assert_eq!(verify(&secret(), &h, &body, at(ts)), Ok(message));
    }
}

#[test]
fn verification_is_separate_from_parsing_and_takes_rotated_secrets() {
    let old = WebhookSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let new = WebhookSecret::new("whsec_c2VjcmV0LXR3by1mb3Itcm90YXRpb24=").unwrap();
    let now = time::macros::datetime!(2026-01-05 10:00 UTC);
    let body = b"not json, but signed";
    let mut headers = http::HeaderMap::new();
    headers.insert(HEADER_ID, "msg_9".parse().unwrap());
    headers.insert(
        HEADER_TIMESTAMP,
        now.unix_timestamp().to_string().parse().unwrap(),
    );
    headers.insert(
        HEADER_SIGNATURE,
        sign(&new, "msg_9", now.unix_timestamp(), body)
            .parse()
            .unwrap(),
    );
    let verifier = Verifier::new();
    // Signed by the new secret: verified whichever order the app lists its secrets in.
    let verified = verifier
        .verify_signature(&[&old, &new], &headers, body, now)
        .unwrap();
    assert_eq!(verified.id, "msg_9");
    assert_eq!(verified.sent_at(), now);
    assert_eq!(verified.body, body);
    // Parsing is a second, separate step.
    assert!(matches!(
        verified.message(),
        Err(WebhookError::InvalidBody(_))
    ));
    assert_eq!(
        verifier.verify_signature(&[&old], &headers, body, now),
        Err(WebhookError::NoValidSignature)
    );
    assert_eq!(
        verifier.verify_signature(&[], &headers, body, now),
        Err(WebhookError::NoValidSignature)
    );
    let late = now + time::Duration::minutes(6);
    assert!(matches!(
        verifier.verify_signature(&[&new], &headers, body, late),
        Err(WebhookError::TooOld { .. })
    ));
}
