//! Seeded synthetic placement instances shaped like Docker images, for benchmarks and tests.
//!
//! A few base chains (OS → runtime → framework) are shared as prefixes; each image takes a
//! prefix of one base and adds its own layers (application, model weights). Sizes are
//! compressed bytes in the ranges of common images (OS 20–80 MB, runtimes 50–300 MB,
//! frameworks 100–500 MB, models 5–250 MB); values are 10–700 kbit/s saved.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Image, Layer};

const MB: u64 = 1_000_000;

/// `images` Docker-like images over shared base chains, from `seed`.
pub fn docker_like(seed: u64, images: usize) -> (Vec<Layer>, Vec<Image>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut layers = Vec::new();
    let mut layer = |rng: &mut ChaCha8Rng, name: String, low: u64, high: u64| {
        layers.push(Layer {
            id: name.clone(),
            bytes: rng.random_range(low * MB..high * MB),
        });
        name
    };
    let bases: Vec<Vec<String>> = (0..(images / 8).max(3))
        .map(|b| {
            vec![
                layer(&mut rng, format!("base{b}-os"), 20, 80),
                layer(&mut rng, format!("base{b}-runtime"), 50, 300),
                layer(&mut rng, format!("base{b}-framework"), 100, 500),
            ]
        })
        .collect();
    let mut out = Vec::with_capacity(images);
    for i in 0..images {
        let base = &bases[rng.random_range(0..bases.len())];
        let depth = rng.random_range(1..=base.len());
        let mut list: Vec<String> = base[..depth].to_vec();
        for j in 0..rng.random_range(1..=3) {
            list.push(layer(&mut rng, format!("image{i}-layer{j}"), 5, 250));
        }
        out.push(Image {
            id: format!("image{i}"),
            layers: list,
            value_bps: rng.random_range(10_000.0..700_000.0),
        });
    }
    (layers, out)
}
