//! Forms that keep what the user typed: when the server refuses a form it
//! renders the page again with a [`FormEcho`] — the values sent, and the
//! refusal next to the input at fault (`aria-invalid` on the input, the
//! message in `.field-error[data-error-for=NAME]`) or above the form when
//! no one input is at fault.

use std::collections::BTreeMap;

use leptos::prelude::*;

/// What a refused form sent, and why it was refused.
#[derive(Debug, Clone, Default)]
pub struct FormEcho {
    pub values: BTreeMap<String, String>,
    /// The `name` of the input at fault, if the refusal names one.
    pub field: Option<String>,
    pub error: Option<String>,
}

impl FormEcho {
    /// What the user sent for `name`, else `default` (a fresh form).
    pub fn value(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// `Some("true")` for the input at fault, for `aria-invalid`.
    pub fn invalid(&self, name: &str) -> Option<&'static str> {
        (self.error.is_some() && self.field.as_deref() == Some(name)).then_some("true")
    }

    /// The refusal, shown next to the input `name` when it is at fault.
    pub fn error_for(&self, name: &str) -> impl IntoView {
        self.invalid(name).and(self.error.clone()).map(|m| {
            view! { <span class="field-error" role="alert" data-error-for=name.to_string()>{m}</span> }
        })
    }

    /// The refusal above the form, when no one input is at fault.
    pub fn form_error(&self) -> impl IntoView {
        self.error
            .clone()
            .filter(|_| self.field.is_none())
            .map(|m| {
                view! { <p class="flash error form-error" role="alert">{m}</p> }
            })
    }
}

/// The two inputs of a new password (never filled in again), each with
/// its refusal next to it; `again` labels the second one.
pub fn new_password_inputs(echo: &FormEcho, again: &'static str) -> impl IntoView {
    view! {
        <label>"New password"
            <input type="password" name="new_password" autocomplete="new-password" minlength="8" required
                aria-invalid=echo.invalid("new_password")/>
            {echo.error_for("new_password")}
        </label>
        <label>{again}
            <input type="password" name="confirm_password" autocomplete="new-password" minlength="8" required
                aria-invalid=echo.invalid("confirm_password")/>
            {echo.error_for("confirm_password")}
        </label>
    }
}

/// A textarea's content: HTML drops a newline right after `<textarea>`, so
/// a leading one is doubled.
pub fn textarea_text(text: String) -> String {
    if text.starts_with('\n') {
        format!("\n{text}")
    } else {
        text
    }
}
