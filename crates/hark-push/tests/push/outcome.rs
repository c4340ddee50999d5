use std::time::Duration;

use hark_push::{PushOutcome, classify};

fn retry(seconds: Option<u64>) -> PushOutcome {
    PushOutcome::Retry {
        after: seconds.map(Duration::from_secs),
    }
}

#[test]
fn success_statuses_are_delivered() {
    for status in [200, 201, 202, 204] {
        assert_eq!(classify(status, None), PushOutcome::Delivered, "{status}");
    }
}

#[test]
fn not_found_and_gone_end_the_subscription() {
    assert_eq!(classify(404, None), PushOutcome::Gone);
    assert_eq!(classify(410, Some("30")), PushOutcome::Gone);
}

#[test]
fn timeouts_rate_limits_and_server_errors_are_retried() {
    for status in [408, 425, 429, 500, 502, 503, 504, 599] {
        assert_eq!(classify(status, None), retry(None), "{status}");
    }
}

#[test]
fn a_retry_after_in_seconds_is_honoured() {
    assert_eq!(classify(429, Some("120")), retry(Some(120)));
    assert_eq!(classify(503, Some(" 0 ")), retry(Some(0)));
}

#[test]
fn a_retry_after_date_is_the_wait_until_that_date() {
    assert_eq!(
        classify(503, Some("Sun, 06 Nov 1994 08:49:37 GMT")),
        retry(Some(0))
    );
    let PushOutcome::Retry { after: Some(wait) } =
        classify(503, Some("Fri, 01 Jan 2100 00:00:00 GMT"))
    else {
        panic!("a date is a wait");
    };
    assert!(wait > Duration::from_secs(365 * 24 * 60 * 60), "{wait:?}");
}

#[test]
fn an_unreadable_retry_after_leaves_the_wait_to_the_caller() {
    for value in ["soon", "-5", "1.5", ""] {
        assert_eq!(classify(429, Some(value)), retry(None), "{value:?}");
    }
}

#[test]
fn other_client_errors_are_rejected() {
    for status in [400, 401, 403, 413, 415, 499, 301, 100] {
        assert_eq!(
            classify(status, Some("10")),
            PushOutcome::Rejected,
            "{status}"
        );
    }
}
