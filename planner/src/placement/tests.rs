use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

const MB: u64 = 1_000_000;

fn layer(id: &str, mb: u64) -> Layer {
    Layer {
        id: id.into(),
        bytes: mb * MB,
    }
}

fn image(id: &str, layers: &[&str], value_bps: f64) -> Image {
    Image {
        id: id.into(),
        layers: layers.iter().map(|l| l.to_string()).collect(),
        value_bps,
    }
}

/// Random layers shared in any pattern (not only as prefixes), some present.
fn random_instance(rng: &mut ChaCha8Rng, n: usize) -> Instance {
    let layers: Vec<Layer> = (0..rng.random_range(3..12))
        .map(|l| Layer {
            id: format!("l{l}"),
            bytes: rng.random_range(1..500) * MB,
        })
        .collect();
    let images: Vec<Image> = (0..n)
        .map(|i| {
            let mut ids: Vec<String> = layers
                .iter()
                .filter(|_| rng.random_bool(0.3))
                .map(|l| l.id.clone())
                .collect();
            if ids.is_empty() {
                ids.push(layers[i % layers.len()].id.clone());
            }
            Image {
                id: format!("i{i}"),
                layers: ids,
                value_bps: if rng.random_bool(0.1) {
                    0.0
                } else {
                    rng.random_range(1.0..1000.0)
                },
            }
        })
        .collect();
    let present: HashSet<String> = layers
        .iter()
        .filter(|_| rng.random_bool(0.15))
        .map(|l| l.id.clone())
        .collect();
    let total: u64 = layers.iter().map(|l| l.bytes).sum();
    let capacity = (total as f64 * rng.random_range(0.05..0.9)) as u64;
    Instance::new(&layers, &images, &present, capacity).unwrap()
}

/// The best value over every subset of the images.
fn brute_force(instance: &Instance) -> f64 {
    let n = instance.images.len();
    (0u32..1 << n)
        .filter_map(|mask| {
            let chosen: Vec<usize> = (0..n).filter(|i| mask >> i & 1 == 1).collect();
            (instance.cost(&chosen) <= instance.capacity_bytes).then(|| instance.value(&chosen))
        })
        .fold(0.0, f64::max)
}

fn assert_close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn capacity_is_in_bytes_not_bits() {
    // 100 Mbit/s for a 5-minute slot carries 3.75 GB, not 30 GB.
    assert_eq!(
        slot_capacity_bytes(10_000_000_000, 100_000_000, 300),
        3_750_000_000
    );
    // Storage is the tighter limit.
    assert_eq!(
        slot_capacity_bytes(2_000_000_000, 100_000_000, 300),
        2_000_000_000
    );
    // 5 Mbit/s for 60 s: 37.5 MB.
    assert_eq!(slot_capacity_bytes(u64::MAX, 5_000_000, 60), 37_500_000);
    // Huge products do not overflow.
    assert_eq!(slot_capacity_bytes(u64::MAX, u64::MAX, u64::MAX), u64::MAX);
    // An image of 40 MB does not fit a 5 Mbit/s minute (it would, counting bits as bytes).
    let layers = [layer("a", 40)];
    let images = [image("a", &["a"], 1.0)];
    let capacity = slot_capacity_bytes(u64::MAX, 5_000_000, 60);
    let instance = Instance::new(&layers, &images, &HashSet::new(), capacity).unwrap();
    for method in Method::ALL {
        assert!(
            place(&instance, method, 0.1).unwrap().images.is_empty(),
            "{method}"
        );
    }
}

#[test]
fn shared_and_present_layers_are_charged_once() {
    let layers = [
        layer("base", 100),
        layer("a", 10),
        layer("b", 10),
        layer("c", 30),
    ];
    let images = [
        image("A", &["base", "a"], 5.0),
        image("B", &["base", "b"], 5.0),
        image("C", &["c"], 1.0),
    ];
    // 125 MB holds A and B together (120 MB: the base once), not A + B counted apart (220 MB).
    let instance = Instance::new(&layers, &images, &HashSet::new(), 125 * MB).unwrap();
    for method in Method::ALL {
        let p = place(&instance, method, 0.1).unwrap();
        assert_eq!(p.images, ["A", "B"], "{method}");
        assert_eq!(p.download_bytes, 120 * MB, "{method}");
    }
    // With the base present, A, B and C cost 50 MB.
    let present = HashSet::from(["base".to_string()]);
    let instance = Instance::new(&layers, &images, &present, 50 * MB).unwrap();
    for method in Method::ALL {
        let p = place(&instance, method, 0.1).unwrap();
        assert_eq!(p.images, ["A", "B", "C"], "{method}");
        assert_eq!(p.download_bytes, 50 * MB, "{method}");
    }
}

#[test]
fn exact_equals_brute_force_on_small_random_instances() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for round in 0..300 {
        let instance = random_instance(&mut rng, 1 + round % 11);
        let exact = place(&instance, Method::Exact, 0.1).unwrap();
        assert_close(
            exact.value_bps,
            brute_force(&instance),
            &format!("round {round}"),
        );
        for method in [Method::Fptas, Method::Greedy] {
            let other = place(&instance, method, 0.3).unwrap();
            assert!(
                other.value_bps <= exact.value_bps * (1.0 + 1e-12),
                "{method}"
            );
        }
    }
}

#[test]
fn fptas_is_within_epsilon_of_exact_on_docker_like_instances() {
    let mut worst = 1.0f64;
    for seed in 0..120 {
        let (layers, images) = synthetic::docker_like(seed, 4 + seed as usize % 16);
        let total: u64 = layers.iter().map(|l| l.bytes).sum();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let present: HashSet<String> = layers
            .iter()
            .filter(|l| l.id.starts_with("base") && rng.random_bool(0.2))
            .map(|l| l.id.clone())
            .collect();
        let capacity = (total as f64 * rng.random_range(0.05..0.6)) as u64;
        let instance = Instance::new(&layers, &images, &present, capacity).unwrap();
        let exact = place(&instance, Method::Exact, 0.1).unwrap().value_bps;
        for epsilon in [0.5, 0.2, 0.05] {
            let fptas = place(&instance, Method::Fptas, epsilon).unwrap().value_bps;
            assert!(
                fptas >= (1.0 - epsilon) * exact,
                "seed {seed}, ε {epsilon}: {fptas} < (1 − ε)·{exact}"
            );
            worst = worst.min(fptas / exact);
        }
    }
    eprintln!("fptas/exact worst ratio {worst}");
}

#[test]
fn bad_instances_are_refused_by_field() {
    let layers = [layer("a", 1)];
    let none = HashSet::new();
    let err = Instance::new(&layers, &[image("x", &["b"], 1.0)], &none, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "image 'x' layer = 'b' is not accepted: a layer listed among the layers"
    );
    let err = Instance::new(&layers, &[image("x", &["a"], -1.0)], &none, 1).unwrap_err();
    assert!(
        err.to_string().starts_with("image 'x' value_bps = -1"),
        "{err}"
    );
    let err = Instance::new(&[layer("a", 1), layer("a", 2)], &[], &none, 1).unwrap_err();
    assert!(err.to_string().contains("'a' (twice)"), "{err}");
    let instance = Instance::new(&layers, &[image("x", &["a"], 1.0)], &none, 1).unwrap();
    for epsilon in [0.0, 1.0, -0.5, f64::NAN] {
        let err = place(&instance, Method::Fptas, epsilon).unwrap_err();
        assert!(err.to_string().starts_with("epsilon = "), "{err}");
    }
    let err = "dp".parse::<Method>().unwrap_err().to_string();
    assert_eq!(
        err,
        "image placement method = 'dp' is not accepted: one of exact, fptas, greedy"
    );
    let (layers, images) = synthetic::docker_like(1, exact::MAX_IMAGES + 1);
    let instance = Instance::new(&layers, &images, &none, 1_000_000_000).unwrap();
    let err = place(&instance, Method::Exact, 0.1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("use fptas or greedy"), "{err}");
}
