//! `e2e-echo --listen <addr:port> --message <text>`: answers every HTTP request with 200 and
//! `<text> host=<Host header> path=<path>`. The test "image" of the fake kubelet's and the
//! ingress router's own tests: the body shows which process a request reached, and how.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn main() {
    let mut listen = None;
    let mut message = String::from("echo");
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("--listen=") {
            listen = Some(v.to_owned());
        } else if let Some(v) = arg.strip_prefix("--message=") {
            message = v.to_owned();
        } else {
            eprintln!("e2e-echo: unknown argument {arg:?}");
            std::process::exit(2);
        }
    }
    let listen = listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("e2e-echo: binding {listen}: {e}");
        std::process::exit(1);
    });
    eprintln!("e2e-echo: listening on {listen}");
    for stream in listener.incoming().flatten() {
        let message = message.clone();
        std::thread::spawn(move || {
            if let Err(e) = answer(stream, &message) {
                eprintln!("e2e-echo: {e}");
            }
        });
    }
}

fn answer(stream: TcpStream, message: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
    let mut host = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("host")
        {
            host = value.trim().to_owned();
        }
    }
    let body = format!("{message} host={host} path={path}\n");
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
