//! The parameter store and secrets manager's page (names only; values
//! are never shown).

use leptos::prelude::*;

use crate::layout::shell;
use crate::{FormEcho, PageContext};

/// A stored value's name and when it last changed (values are never shown).
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub name: String,
    pub updated_at: String,
}

/// The parameter store and the secrets manager: names, a form to set a
/// value, and delete buttons. Values are write-only. `refused` fills one
/// form in again after a refusal (its name only, never the value).
pub fn stores_page(
    ctx: &PageContext,
    parameters: Vec<StoredRow>,
    secrets: Vec<StoredRow>,
    refused: Option<(&'static str, FormEcho)>,
) -> String {
    let none = FormEcho::default();
    let section = |kind: &'static str,
                   title: &'static str,
                   hint: &'static str,
                   rows: Vec<StoredRow>| {
        let csrf = ctx.csrf.clone();
        let list = if rows.is_empty() {
            view! { <p class="muted" data-testid=format!("{kind}-empty")>"Nothing stored yet."</p> }
                .into_any()
        } else {
            let items = rows
                .into_iter()
                .map(|r| {
                    let csrf = csrf.clone();
                    let action = format!("/admin/stores/{kind}/delete");
                    view! {
                        <tr data-stored=r.name.clone()>
                            <td><code>{r.name.clone()}</code></td>
                            <td><time datetime=r.updated_at.clone() data-relative>{r.updated_at.clone()}</time></td>
                            <td>
                                <form class="inline" method="post" action=action data-confirm=format!("Delete {}?", r.name)>
                                    <input type="hidden" name="csrf_token" value=csrf/>
                                    <input type="hidden" name="name" value=r.name.clone()/>
                                    <button type="submit" class="danger small">"Delete"</button>
                                </form>
                            </td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <table>
                    <thead><tr><th>"Name"</th><th>"Updated"</th><th></th></tr></thead>
                    <tbody>{items}</tbody>
                </table>
            }
            .into_any()
        };
        let action = format!("/admin/stores/{kind}");
        let echo = match &refused {
            Some((k, echo)) if *k == kind => echo,
            _ => &none,
        };
        view! {
            <section class="card" data-testid=kind>
                <h2>{title}</h2>
                <p class="muted">{hint}</p>
                {list}
                <form class="stack" method="post" action=action>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    {echo.form_error()}
                    <label>"Name" <input type="text" name="name" required
                        value=echo.value("name", "") aria-invalid=echo.invalid("name")/>
                        {echo.error_for("name")}</label>
                    <label>"Value (stored encrypted; never shown again)"
                        <textarea name="value" rows="3" autocomplete="off" required
                            aria-invalid=echo.invalid("value")></textarea>
                        {echo.error_for("value")}</label>
                    <button type="submit">"Save"</button>
                </form>
            </section>
        }
    };
    let content = view! {
        {section("parameter", "Parameter store", "Buildspecs read these with env.parameter-store, e.g. DB_PASSWORD: /prod/db/password.", parameters)}
        {section("secret", "Secrets manager", "Buildspecs read these with env.secrets-manager: ID or ID:json-key.", secrets)}
    };
    shell(ctx, content)
}
