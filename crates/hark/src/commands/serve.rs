//! `hark serve`, `hark worker`, `hark notifier` and `hark migrate`.

use secrecy::ExposeSecret;

use super::load_config;
use crate::ServerArgs;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    hark_server::app::init_tracing(&config.log_format);
    let app = hark_server::App::build(config).await?;
    tracing_info(&format!("listening on http://{}", app.addr()));
    app.run_until_stopped(hark_server::app::shutdown_signal())
        .await
}

pub async fn worker(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    hark_server::app::init_tracing(&config.log_format);
    tracing_info(&format!(
        "processing jobs with {} workers",
        config.jobs.worker_count()
    ));
    hark_server::app::run_workers(config, hark_server::app::shutdown_signal()).await
}

pub async fn notifier(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    hark_server::app::init_tracing(&config.log_format);
    hark_server::app::run_notifier(config, hark_server::app::shutdown_signal()).await
}

pub async fn migrate(args: ServerArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    std::fs::create_dir_all(&config.data_dir)?;
    hark_server::db::connect(config.database_url.expose_secret(), true).await?;
    println!("migrations applied");
    Ok(())
}

fn tracing_info(message: &str) {
    eprintln!("hark: {message}");
}
