use std::collections::{HashMap, HashSet};
use std::time::Duration;

use hark_broker::{BrokerConfig, Consumer, connect, consume};
use tokio::sync::{mpsc, oneshot};

use crate::helpers::{Event, GROUP, ids, patiently, publish_events, receive_and_ack};

on_every_broker!(
    one_consumer_receives_every_acked_event_once_in_order,
    two_consumers_of_a_group_split_the_events,
    events_a_dropped_consumer_did_not_ack_go_to_another_consumer,
);

async fn one_consumer_receives_every_acked_event_once_in_order(config: BrokerConfig) {
    let mut consumer = consume(&config, GROUP).await.expect("joins the group");
    let broker = connect(&config).await.expect("connects");

    let published = publish_events(broker.as_ref(), 200).await;
    // A last event marks the end: anything delivered twice would push it further back.
    let end = Event::numbered(200);
    end.publish(broker.as_ref()).await.expect("acked");

    let received = receive_and_ack(&mut consumer, 201).await;
    assert_eq!(received[..200], published[..]);
    assert_eq!(received[200], end);
}

async fn two_consumers_of_a_group_split_the_events(config: BrokerConfig) {
    let first = consume(&config, GROUP).await.expect("joins the group");
    let second = consume(&config, GROUP).await.expect("joins the group");
    let broker = connect(&config).await.expect("connects");
    let published = publish_events(broker.as_ref(), 300).await;

    let (received, mut receptions) = mpsc::unbounded_channel();
    let (second_has_one, first_may_go_on) = oneshot::channel();
    // The first consumer holds its first event unacked until the second has one too: with
    // its prefetch full, the broker must give the second consumer some, however the two
    // tasks happen to be scheduled.
    let first = tokio::spawn(forward(
        ("first", first),
        received.clone(),
        Some(first_may_go_on),
        None,
    ));
    let second = tokio::spawn(forward(
        ("second", second),
        received,
        None,
        Some(second_has_one),
    ));

    let mut deliveries: HashMap<String, Vec<&str>> = HashMap::new();
    patiently("both consumers together receiving every event", async {
        while deliveries.len() < published.len() {
            let (consumer, id) = receptions.recv().await.expect("consumers still running");
            deliveries.entry(id).or_default().push(consumer);
        }
    })
    .await;
    first.abort();
    second.abort();

    let delivered: HashSet<String> = deliveries.keys().cloned().collect();
    assert_eq!(delivered, ids(&published));
    let twice: Vec<_> = deliveries.iter().filter(|(_, by)| by.len() > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    for name in ["first", "second"] {
        let count = deliveries.values().filter(|by| by[0] == name).count();
        assert!(count > 0, "the {name} consumer received nothing");
    }
}

/// Receives and acks forever, reporting each event id. The first event is announced on
/// `announce`, and left unacked (so the consumer takes no more) until `hold` fires.
async fn forward(
    (name, mut consumer): (&'static str, Consumer),
    received: mpsc::UnboundedSender<(&'static str, String)>,
    mut hold: Option<oneshot::Receiver<()>>,
    mut announce: Option<oneshot::Sender<()>>,
) {
    loop {
        let delivery = consumer.next().await.expect("a delivery");
        let _ = received.send((name, delivery.event_id.clone()));
        if let Some(announce) = announce.take() {
            let _ = announce.send(());
        }
        if let Some(hold) = hold.take() {
            let _ = hold.await;
        }
        consumer.ack(&delivery).await.expect("the ack goes out");
    }
}

async fn events_a_dropped_consumer_did_not_ack_go_to_another_consumer(config: BrokerConfig) {
    // NATS hands an unacked event on once its ack wait runs out; keep that short here.
    let config = BrokerConfig {
        ack_wait: Duration::from_secs(2),
        ..config
    };
    let mut careless = consume(&config, GROUP).await.expect("joins the group");
    let broker = connect(&config).await.expect("connects");
    let published = publish_events(broker.as_ref(), 20).await;

    let taken = patiently("the first consumer taking every event", async {
        let mut taken = Vec::new();
        while taken.len() < published.len() {
            taken.push(careless.next().await.expect("a delivery"));
        }
        taken
    })
    .await;
    let taken_events: Vec<Event> = taken.iter().map(Event::of).collect();
    assert_eq!(taken_events, published);

    // The second consumer joins while the first holds everything, then the first goes away.
    let mut successor = consume(&config, GROUP).await.expect("joins the group");
    drop(taken);
    drop(careless);

    let mut redelivered = Vec::new();
    while ids(&redelivered) != ids(&published) {
        redelivered.extend(receive_and_ack(&mut successor, 1).await);
    }
    assert!(redelivered.iter().all(|event| published.contains(event)));
}
