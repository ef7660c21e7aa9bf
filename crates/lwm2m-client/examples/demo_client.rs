//! A minimal device on the client runtime: registers to one server, publishes a temperature that drifts every
//! 10 s, Sends it after every Register, prints every runtime event and de-registers after ten minutes.
//!
//! ```sh
//! cargo run -p lwm2m-client --example demo_client -- coap://127.0.0.1:5683 urn:dev:example
//! ```

use std::time::Duration;

use lwm2m_client::dm::{FactoryConfig, ServerConfig};
use lwm2m_client::objects::temperature::TemperatureSensor;
use lwm2m_client::runtime::{Client, ClientConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let uri = args.next().unwrap_or_else(|| "coap://127.0.0.1:5683".into());
    let endpoint = args.next().unwrap_or_else(|| "urn:dev:example".into());

    let mut server = ServerConfig::new(1, uri, 120);
    server.server.mute_send = Some(false);
    let dm = FactoryConfig {
        servers: vec![server],
        temperature: Some(vec![(0, 21.0)]),
        ..FactoryConfig::default()
    }
    .build()?;
    let mut config = ClientConfig::new(endpoint);
    config.send_on_register = vec!["/3303/0/5700".parse()?];
    let (client, mut events) = Client::start(dm, config)?;

    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let stop = tokio::time::sleep(Duration::from_secs(600));
    tokio::pin!(stop);
    let mut step = 0.3;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => println!("{ev:?}"),
                None => break,
            },
            _ = tick.tick() => {
                step = -step;
                client
                    .with_data_model(move |dm| {
                        dm.with_object::<TemperatureSensor, _>(3303, |t, fx| {
                            let v = t.value(0).unwrap_or(21.0) + step;
                            t.set_value(0, v, None, fx)
                        })
                    })
                    .await?;
            }
            () = &mut stop => break,
        }
    }
    client.shutdown().await;
    Ok(())
}
