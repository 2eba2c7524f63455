fn main() {
    let t = std::time::Instant::now();
    let hs: Vec<_> = (0..100_000)
        .map(|i| {
            weft::spawn(move || {
                weft::yield_now();
                i
            })
        })
        .collect();
    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    println!("{s} {:?} {:?}", t.elapsed(), weft::stats());
    let r = weft::run(|| {
        let t = std::time::Instant::now();
        for _ in 0..1_000_000 {
            weft::yield_now();
        }
        let y = t.elapsed();
        let t = std::time::Instant::now();
        for _ in 0..100_000 {
            weft::spawn(|| ()).join().unwrap();
        }
        (y / 1_000_000, t.elapsed() / 100_000)
    });
    println!("yield {:?} spawn+join {:?}", r.0, r.1);
    println!("{:?}", weft::stats());
}
