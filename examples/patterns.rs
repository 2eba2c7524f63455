//! The three ways green threads talk, each in a few lines with `weft::chan`:
//!
//! 1. **a queue**: producers and consumers share a bounded channel; a full queue makes the
//!    producer wait (back-pressure), an empty one makes consumers wait;
//! 2. **an actor**: one green thread owns some state and is reached only through its
//!    mailbox; a request carries its own reply channel;
//! 3. **pub/sub**: a broker routes each published message to the subscribers of its topic.
//!
//! ```text
//! cargo run --release --example patterns -- [WORKERS]
//! ```

use std::collections::HashMap;

use weft::chan::{self, Sender};

fn main() {
    if let Some(workers) = std::env::args().nth(1) {
        let n = workers.parse().unwrap_or(0);
        if let Err(e) = weft::Config::new().workers(n).apply() {
            eprintln!("WORKERS: {e}\nusage: patterns [WORKERS]");
            std::process::exit(2);
        }
    }
    weft::run(|| {
        queue();
        actor();
        pub_sub();
    });
}

/// Producer/consumer: 1,000 jobs through a queue of 16, shared by 4 consumers.
fn queue() {
    let (jobs, queue) = chan::bounded::<u64>(16);
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let queue = queue.clone();
            weft::spawn(move || queue.iter().map(|job| job * 2).sum::<u64>())
        })
        .collect();
    for job in 1..=1000 {
        jobs.send(job).unwrap(); // waits while 16 jobs are queued
    }
    drop(jobs); // the consumers' loops end once the queue is empty
    let total: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    println!("queue: 4 consumers doubled 1000 jobs, total {total}");
}

/// An actor: a bank account that only its own green thread touches.
fn actor() {
    enum Msg {
        Deposit(u64),
        Withdraw(u64, Sender<Result<u64, u64>>), // replies with the new or the short balance
        Balance(Sender<u64>),
    }
    let (mailbox, inbox) = chan::unbounded::<Msg>();
    let account = weft::spawn(move || {
        let mut balance = 0u64;
        for msg in inbox {
            match msg {
                Msg::Deposit(n) => balance += n,
                Msg::Withdraw(n, reply) if n <= balance => {
                    balance -= n;
                    let _ = reply.send(Ok(balance));
                }
                Msg::Withdraw(_, reply) => {
                    let _ = reply.send(Err(balance));
                }
                Msg::Balance(reply) => {
                    let _ = reply.send(balance);
                }
            }
        }
        balance
    });
    // 100 clients deposit 10 each, concurrently; then one asks for too much.
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let mailbox = mailbox.clone();
            weft::spawn(move || mailbox.send(Msg::Deposit(10)).unwrap())
        })
        .collect();
    clients.into_iter().for_each(|c| c.join().unwrap());
    let (reply, answer) = chan::bounded(1);
    mailbox.send(Msg::Withdraw(5000, reply)).unwrap();
    let refused = answer.recv().unwrap();
    let (reply, answer) = chan::bounded(1);
    mailbox.send(Msg::Withdraw(400, reply)).unwrap();
    let left = answer.recv().unwrap();
    let (reply, answer) = chan::bounded(1);
    mailbox.send(Msg::Balance(reply)).unwrap();
    let balance = answer.recv().unwrap();
    drop(mailbox);
    let final_balance = account.join().unwrap();
    println!(
        "actor: 100 deposits of 10; withdraw 5000 -> {refused:?}; withdraw 400 -> {left:?}; \
         balance {balance}, final {final_balance}"
    );
}

/// Pub/sub: a broker routes messages by topic; each subscriber counts what it received.
fn pub_sub() {
    enum Broker {
        Subscribe(&'static str, Sender<String>),
        Publish(&'static str, String),
    }
    let (broker, requests) = chan::unbounded::<Broker>();
    let router = weft::spawn(move || {
        let mut topics: HashMap<&str, Vec<Sender<String>>> = HashMap::new();
        for request in requests {
            match request {
                Broker::Subscribe(topic, subscriber) => {
                    topics.entry(topic).or_default().push(subscriber)
                }
                Broker::Publish(topic, text) => {
                    // Subscribers that went away are forgotten.
                    let subscribers = topics.entry(topic).or_default();
                    subscribers.retain(|s| s.send(text.clone()).is_ok());
                }
            }
        }
        // Dropping `topics` closes every subscriber's channel: their loops end.
    });
    let subscriber = |name: &'static str, wants: &[&'static str]| {
        let (inbox, messages) = chan::unbounded();
        for &topic in wants {
            broker
                .send(Broker::Subscribe(topic, inbox.clone()))
                .unwrap();
        }
        weft::spawn(move || (name, messages.iter().count()))
    };
    let subscribers = [
        subscriber("sports fan", &["sports"]),
        subscriber("news reader", &["news"]),
        subscriber("reads everything", &["sports", "news", "weather"]),
    ];
    for i in 0..30 {
        let topic = ["sports", "news", "weather"][i % 3];
        broker
            .send(Broker::Publish(topic, format!("{topic} #{i}")))
            .unwrap();
    }
    drop(broker);
    router.join().unwrap();
    let counts: Vec<String> = subscribers
        .into_iter()
        .map(|s| {
            let (name, count) = s.join().unwrap();
            format!("{name} got {count}")
        })
        .collect();
    println!("pub/sub: 30 messages on 3 topics; {}", counts.join(", "));
}
