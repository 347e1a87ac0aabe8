//! Form fields that keep what was typed and show their problem next to them.

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::error::Problem;

/// Messages per field name; messages without a field go under `""`.
#[derive(Debug, Default)]
pub struct Errors(BTreeMap<String, String>);

impl Errors {
    /// Adds a problem under its field.
    pub fn add(&mut self, problem: &Problem) {
        let field = problem.field.clone().unwrap_or_default();
        let message = match (&problem.value, &problem.accepted) {
            (Some(value), Some(accepted)) => format!("'{value}' is not accepted: {accepted}"),
            _ => problem.error.clone(),
        };
        self.0
            .entry(field)
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&message);
            })
            .or_insert(message);
    }

    /// Whether there is any message.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Messages of fields the form does not show, e.g. a database error.
    pub fn others(&self, shown: &[&str]) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(f, _)| !shown.contains(&f.as_str()))
            .map(|(_, m)| m.as_str())
            .collect()
    }

    fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

/// A labeled text input.
pub fn text(errors: &Errors, name: &str, label: &str, value: &str, hint: &str) -> Markup {
    let error = errors.get(name);
    html! {
        div class=[error.map(|_| "field-error")] {
            label for=(name) { (label) " " span.hint { (hint) } }
            input type="text" id=(name) name=(name) value=(value)
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("{name}-error"))];
            @if let Some(e) = error { div.error id={ (name) "-error" } data-error-for=(name) { (e) } }
        }
    }
}

/// A labeled choice among `(value, text)` options.
pub fn select(
    errors: &Errors,
    name: &str,
    label: &str,
    value: &str,
    options: &[(&str, &str)],
) -> Markup {
    let error = errors.get(name);
    html! {
        div class=[error.map(|_| "field-error")] {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (v, t) in options { option value=(v) selected[*v == value] { (t) } }
            }
            @if let Some(e) = error { div.error data-error-for=(name) { (e) } }
        }
    }
}

/// The messages no field shows, as a banner.
pub fn banner(errors: &Errors, shown: &[&str]) -> Markup {
    html! {
        @for message in errors.others(shown) { div.banner.bad role="alert" { (message) } }
    }
}
