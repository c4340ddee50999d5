//! The broker port against the real RabbitMQ (127.0.0.1:5672) and NATS JetStream
//! (127.0.0.1:4222): every scenario runs on both, each under a namespace of its own.

mod helpers;

/// Turns `async fn scenario(config: BrokerConfig)` functions into one test per broker.
macro_rules! on_every_broker {
    ($($scenario:ident),+ $(,)?) => {
        mod rabbitmq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    crate::helpers::run(crate::helpers::Backend::RabbitMq, super::$scenario).await;
                }
            )+
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    crate::helpers::run(crate::helpers::Backend::Nats, super::$scenario).await;
                }
            )+
        }
    };
}

mod connect;
mod consumption;
mod declarations;
mod outage;
