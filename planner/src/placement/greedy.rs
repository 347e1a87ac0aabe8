//! `greedy`: repeatedly the image with the most value per byte it adds (layers already taken
//! or present are free), while it fits; then, if a single image that fits is worth more than
//! the whole pick, that image instead (the classic fix that keeps greedy within half of the
//! optimum when nothing is shared).

use super::{Instance, Union};

pub(super) fn solve(instance: &Instance) -> Vec<usize> {
    let mut union = Union::new(instance);
    let mut left = instance.candidates();
    let mut chosen = Vec::new();
    loop {
        let room = instance.capacity_bytes - union.bytes;
        let best = left
            .iter()
            .enumerate()
            .filter_map(|(at, &i)| {
                let bytes = union.marginal(i);
                (bytes <= room).then(|| (at, instance.values[i] / bytes as f64))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((at, _)) = best else { break };
        let i = left.swap_remove(at);
        union.add(i);
        chosen.push(i);
    }
    let empty = Union::new(instance);
    let single = instance
        .candidates()
        .into_iter()
        .filter(|&i| empty.marginal(i) <= instance.capacity_bytes)
        .max_by(|&a, &b| instance.values[a].total_cmp(&instance.values[b]));
    match single {
        Some(i) if instance.values[i] > instance.value(&chosen) => vec![i],
        _ => chosen,
    }
}
