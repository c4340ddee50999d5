//! What each broker is told to keep, seen with its own client.

use std::time::Duration;

use async_nats::jetstream::stream::StorageType;
use hark_broker::{BrokerConfig, connect, consume};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use crate::helpers::{Backend, Event, GROUP, receive_and_ack, run};

#[tokio::test]
async fn rabbitmq_gets_persistent_messages_with_their_event_id_on_a_topic_exchange() {
    run(Backend::RabbitMq, |config: BrokerConfig| async move {
        let broker = connect(&config).await.expect("connects");

        // A queue of our own, bound the way a group's queue is, read with basic.get.
        let connection = lapin::Connection::connect(&config.url, Default::default())
            .await
            .expect("connects");
        let channel = connection.create_channel().await.expect("a channel");
        let queue = config.queue_name(GROUP);
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declares");
        channel
            .queue_bind(
                queue.as_str().into(),
                config.exchange_name().into(),
                format!("{}.note.*", config.namespace).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("the exchange exists");

        let event = Event::numbered(0);
        event.publish(broker.as_ref()).await.expect("acked");

        let message = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
            .expect("the event is in the queue");
        let delivery = message.delivery;
        assert_eq!(delivery.exchange.as_str(), config.namespace);
        assert_eq!(
            delivery.routing_key.as_str(),
            format!("{}.note.created", config.namespace)
        );
        assert_eq!(*delivery.properties.delivery_mode(), Some(2));
        assert_eq!(
            delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str()),
            Some(event.id.as_str())
        );
        assert_eq!(delivery.data, event.body.as_bytes());
        connection.close(200, "OK".into()).await.expect("closes");
    })
    .await;
}

#[tokio::test]
async fn jetstream_keeps_events_on_file_and_stores_a_republished_event_once() {
    run(Backend::Nats, |config: BrokerConfig| async move {
        let mut consumer = consume(&config, GROUP).await.expect("joins the group");
        let broker = connect(&config).await.expect("connects");

        let client = async_nats::connect(config.url.as_str())
            .await
            .expect("connects");
        let stream = async_nats::jetstream::new(client)
            .get_stream(config.stream_name())
            .await
            .expect("the stream exists");
        let stream_config = &stream.cached_info().config;
        assert_eq!(stream_config.subjects, [format!("{}.>", config.namespace)]);
        assert_eq!(stream_config.storage, StorageType::File);
        assert!(stream_config.duplicate_window >= Duration::from_secs(120));

        // A relay that lost the first acknowledgement publishes the same event again.
        let event = Event::numbered(0);
        event.publish(broker.as_ref()).await.expect("acked");
        event.publish(broker.as_ref()).await.expect("acked again");
        let end = Event::numbered(1);
        end.publish(broker.as_ref()).await.expect("acked");

        assert_eq!(receive_and_ack(&mut consumer, 2).await, [event, end]);
    })
    .await;
}
