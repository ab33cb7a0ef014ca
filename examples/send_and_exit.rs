//! Sends COUNT metrics in background mode and returns from `main` holding the guard, as an
//! application would. The child-process tests use it to prove that a normal exit loses
//! nothing.
//!
//! ```text
//! cargo run --example send_and_exit -- PORT COUNT [tcp|udp] [exit]
//! ```
//!
//! With `exit`, it calls `graphyte::flush()` and then `std::process::exit`, which runs no
//! destructors: the flush is what delivers the metrics.

fn main() -> Result<(), graphyte::Error> {
    // graphyte reports errors through the `log` crate: without a logger they are invisible.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args
        .first()
        .expect("PORT")
        .parse()
        .expect("PORT is a number");
    let count: u32 = args
        .get(1)
        .expect("COUNT")
        .parse()
        .expect("COUNT is a number");
    let transport = match args.get(2).map(String::as_str) {
        Some("udp") => graphyte::Transport::Udp,
        _ => graphyte::Transport::Tcp,
    };
    let _guard = graphyte::init(
        graphyte::Sender::builder("127.0.0.1")
            .port(port)
            .transport(transport)
            .queue_capacity(count as usize),
    )?;
    for i in 0..count {
        graphyte::send(format!("child.metric{i}"), i);
    }
    if args.get(3).map(String::as_str) == Some("exit") {
        graphyte::flush()?;
        std::process::exit(0);
    }
    Ok(())
}
