use std::collections::HashSet;
use std::time::Duration;

use hark_broker::{BrokerConfig, connect, consume};
use tokio::sync::mpsc;

use crate::helpers::{Event, GROUP, ids, patiently, publish_events};
use hark_testkit::proxy::Proxy;

on_every_broker!(a_broker_that_goes_away_and_comes_back_loses_no_acked_event);

/// How long the broker stays unreachable.
const OUTAGE: Duration = Duration::from_secs(3);

async fn a_broker_that_goes_away_and_comes_back_loses_no_acked_event(config: BrokerConfig) {
    let proxy = Proxy::start(&config.url).await;
    let config = BrokerConfig {
        // What NATS delivered into the cut connection comes back after this.
        ack_wait: Duration::from_secs(3),
        url: proxy.url(&config.url),
        ..config.clone()
    };
    let mut consumer = consume(&config, GROUP).await.expect("joins the group");
    let broker = connect(&config).await.expect("connects");

    // The consumer runs on its own, as `hark notifier` does: errors are reported and it carries on.
    let (received, mut receptions) = mpsc::unbounded_channel();
    let (failed, mut failures) = mpsc::unbounded_channel();
    let consuming = tokio::spawn(async move {
        loop {
            match consumer.next().await {
                Ok(delivery) => {
                    let _ = received.send(delivery.event_id.clone());
                    // A lost ack only means the event comes again.
                    let _ = consumer.ack(&delivery).await;
                }
                Err(error) => {
                    let _ = failed.send(error.to_string());
                }
            }
        }
    });

    let mut acked = publish_events(broker.as_ref(), 50).await;
    let mut seen = HashSet::new();
    let first = patiently("the first event", receptions.recv()).await;
    seen.insert(first.expect("the consumer is running"));

    proxy.cut();
    let lost = Event::numbered(50);
    let outcome = patiently(
        "a publish while the broker is away",
        lost.publish(broker.as_ref()),
    )
    .await;
    assert!(outcome.is_err(), "a publish succeeded with the broker away");
    assert!(!broker.healthy().await, "healthy while the broker is away");
    patiently("the consumer noticing", failures.recv()).await;

    tokio::time::sleep(OUTAGE).await;
    proxy.restore();
    patiently("the broker being healthy again", async {
        while !broker.healthy().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    acked.extend(publish_events(broker.as_ref(), 50).await);

    let wanted = ids(&acked);
    patiently("the consumer receiving every acked event", async {
        while !wanted.is_subset(&seen) {
            seen.insert(receptions.recv().await.expect("the consumer is running"));
        }
    })
    .await;
    consuming.abort();
}
