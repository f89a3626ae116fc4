use std::time::Duration;
use jsfu_tests::WsClient;

#[tokio::test]
async fn probe() -> anyhow::Result<()> {
    let texts: Vec<String> = std::fs::read_to_string("/tmp/probe.txt")?.lines().map(str::to_owned).collect();
    let mut ws = WsClient::connect("ws://127.0.0.1:28188/", Some("janus-protocol")).await?;
    for t in texts {
        let t = t.replace("\\n", "\n");
        println!(">> {t}");
        ws.send_text(t).await?;
        while let Some(v) = ws.recv(Duration::from_millis(400)).await? { println!("<< {v}"); }
    }
    Ok(())
}
