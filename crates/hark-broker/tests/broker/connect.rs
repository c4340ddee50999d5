use hark_broker::{BrokerConfig, BrokerError, connect, consume};

use crate::helpers::Backend;

#[tokio::test]
async fn an_unknown_scheme_is_refused_naming_the_schemes_that_work() {
    let config = BrokerConfig::new("redis://127.0.0.1:6379");
    let error = connect(&config).await.err().expect("redis is no broker");
    assert!(matches!(&error, BrokerError::UnsupportedScheme { scheme } if scheme == "redis"));
    let message = error.to_string();
    assert!(
        message.contains("amqp://") && message.contains("nats://"),
        "{message}"
    );
    assert!(!error.is_transient());

    let error = consume(&config, "notifier")
        .await
        .err()
        .expect("redis is no broker");
    assert!(matches!(error, BrokerError::UnsupportedScheme { .. }));
}

#[tokio::test]
async fn an_unreachable_broker_fails_to_connect_with_its_address() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("an address").port()
    };
    for backend in [Backend::RabbitMq, Backend::Nats] {
        let url = backend.url().replace(
            if matches!(backend, Backend::RabbitMq) {
                ":5672"
            } else {
                ":4222"
            },
            &format!(":{closed_port}"),
        );
        let config = BrokerConfig::new(url);
        let error = connect(&config).await.err().expect("nothing listens there");
        assert!(
            matches!(error, BrokerError::Connect { .. }),
            "{backend:?}: {error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("127.0.0.1:{closed_port}")),
            "{message}"
        );
        assert!(
            !message.contains("guest:guest"),
            "the password shows: {message}"
        );
        assert!(error.is_transient());

        let error = consume(&config, "notifier")
            .await
            .err()
            .expect("nothing listens there");
        assert!(
            matches!(error, BrokerError::Connect { .. }),
            "{backend:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_group_name_with_wildcards_is_refused() {
    let config = BrokerConfig::new(Backend::Nats.url());
    let error = consume(&config, "notifier.>")
        .await
        .err()
        .expect("not a plain name");
    assert!(matches!(
        error,
        BrokerError::InvalidName { what: "group", .. }
    ));
}
