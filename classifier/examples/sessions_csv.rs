//! Writes a generated session export (see `qoelab_classifier::synthetic::sessions_csv`) to
//! stdout: `cargo run -p qoelab-classifier --example sessions_csv -- ROWS SEED > sessions.csv`.

fn main() {
    let mut args = std::env::args().skip(1);
    let rows = args
        .next()
        .map_or(2000, |a| a.parse().expect("ROWS is a number"));
    let seed = args
        .next()
        .map_or(1, |a| a.parse().expect("SEED is a number"));
    print!("{}", qoelab_classifier::synthetic::sessions_csv(rows, seed));
}
