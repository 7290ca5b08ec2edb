//! Administrators' users page (create, make administrator, disable, a
//! password reset link, group membership) and the signed-out page where a
//! reset link is used.

use leptos::prelude::*;

use crate::layout::{document, flash_view, shell};
use crate::{Flash, FormEcho, PageContext};

/// A row of the admin's user list.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: String,
    pub groups: Vec<String>,
}

/// A group and its members.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub name: String,
    pub members: Vec<String>,
}

/// A reset link just made: (user, link). Shown once.
pub type NewResetLink = (String, String);

fn action_button(
    csrf: &str,
    action: String,
    label: &'static str,
    class: &'static str,
    confirm: Option<String>,
) -> impl IntoView {
    view! {
        <form class="inline" method="post" action=action data-confirm=confirm>
            <input type="hidden" name="csrf_token" value=csrf.to_string()/>
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

fn user_row(csrf: &str, viewer: &str, row: UserRow) -> impl IntoView {
    let base = format!("/admin/users/{}", row.name);
    let me = row.name == viewer;
    let actions = (!me).then(|| {
        let role = if row.admin {
            action_button(csrf, format!("{base}/remove-admin"), "Remove administrator", "secondary",
                Some(format!("Make {} an ordinary user?", row.name)))
        } else {
            action_button(csrf, format!("{base}/make-admin"), "Make administrator", "secondary",
                Some(format!("Make {} an administrator? They will be able to do anything.", row.name)))
        };
        let toggle = if row.disabled {
            action_button(csrf, format!("{base}/enable"), "Enable", "danger", None)
        } else {
            action_button(csrf, format!("{base}/disable"), "Disable", "danger",
                Some(format!("Disable {}? They will be signed out everywhere.", row.name)))
        };
        let reset = action_button(csrf, format!("{base}/reset-link"), "Reset password link", "secondary",
            Some(format!("Make a one-time link for {} to choose a new password? An earlier link stops working.", row.name)));
        view! { <div class="actions">{role}{reset}{toggle}</div> }
    });
    let state = if row.disabled {
        view! { <span class="badge off">"disabled"</span> }
    } else {
        view! { <span class="badge on">"active"</span> }
    };
    let groups = row.groups.join(", ");
    view! {
        <tr data-user=row.name.clone()>
            <td>{row.name.clone()}</td>
            <td data-testid="role">{if row.admin { "admin" } else { "user" }}</td>
            <td>{state}</td>
            <td data-testid="groups">{groups}</td>
            <td><time datetime=row.created_at.clone() data-relative>{row.created_at.clone()}</time></td>
            <td>{actions}</td>
        </tr>
    }
}

fn groups_card(
    ctx: &PageContext,
    groups: Vec<GroupRow>,
    users: &[String],
    echo: &FormEcho,
) -> impl IntoView {
    let csrf = ctx.csrf.clone();
    let options = users
        .iter()
        .map(|u| view! { <option value=u.clone()></option> })
        .collect_view();
    let list = groups
        .into_iter()
        .map(|g| {
            let members = g
                .members
                .iter()
                .map(|m| {
                    let remove = format!("/admin/groups/{}/members/{m}/remove", g.name);
                    view! {
                        <li data-member=m.clone()>{m.clone()}" "
                            {action_button(&csrf, remove, "Remove", "link", None)}</li>
                    }
                })
                .collect_view();
            let add = format!("/admin/groups/{}/members", g.name);
            view! {
                <div class="card" data-group=g.name.clone()>
                    <h3>{g.name.clone()}</h3>
                    <ul>{members}</ul>
                    <form class="row" method="post" action=add>
                        <input type="hidden" name="csrf_token" value=csrf.clone()/>
                        <input type="text" name="username" list="user-names" placeholder="user name" required aria-label="User to add"/>
                        <button type="submit" class="secondary">"Add to group"</button>
                    </form>
                </div>
            }
        })
        .collect_view();
    view! {
        <section class="card" data-testid="groups">
            <h2>"Groups"</h2>
            <p class="muted">"Policies attached to a group apply to its members; a repository's Access tab can share with a group."</p>
            <datalist id="user-names">{options}</datalist>
            {list}
            <form class="row" method="post" action="/admin/groups">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label class="grow">"New group"
                    <input type="text" name="group" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}" required
                        title="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
                        value=echo.value("group", "") aria-invalid=echo.invalid("group")/>
                    {echo.error_for("group")}
                </label>
                <button type="submit">"Create group"</button>
            </form>
        </section>
    }
}

/// Admin: users and groups. `echo` fills the create forms again after a
/// refusal (never the password); `reset` shows a link just made, once.
pub fn admin_users(
    ctx: &PageContext,
    rows: Vec<UserRow>,
    groups: Vec<GroupRow>,
    reset: Option<NewResetLink>,
    echo: &FormEcho,
) -> String {
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let rows = rows
        .into_iter()
        .map(|row| user_row(&ctx.csrf, &ctx.viewer.name, row))
        .collect_view();
    let reset = reset.map(|(user, link)| {
        view! {
            <section class="card" data-testid="reset-link">
                <h2>{format!("Password reset link for {user}")}</h2>
                <p>"Give it to them privately. It works once, for a day, and signs them out everywhere when used. It is not shown again."</p>
                <div class="secret"><code id="reset-link">{link}</code>
                    <button type="button" class="secondary" data-copy="reset-link" hidden>"Copy"</button></div>
            </section>
        }
    });
    let content = view! {
        {reset}
        <section class="card">
            <h2>"Users"</h2>
            <table>
                <thead><tr><th>"Name"</th><th>"Role"</th><th>"State"</th><th>"Groups"</th><th>"Created"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Create a user"</h2>
            <form class="stack" method="post" action="/admin/users">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                <label>"User name"
                    <input type="text" name="username" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}" required
                        title="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
                        value=echo.value("username", "") aria-invalid=echo.invalid("username")/>
                    {echo.error_for("username")}
                </label>
                <label>"Initial password"
                    <input type="password" name="password" autocomplete="new-password" minlength="8" required
                        aria-invalid=echo.invalid("password")/>
                    {echo.error_for("password")}
                </label>
                <label class="check"><input type="checkbox" name="admin" value="true"
                    checked=echo.value("admin", "") == "true"/>"Administrator"</label>
                <button type="submit">"Create user"</button>
            </form>
        </section>
        {groups_card(ctx, groups, &names, echo)}
    };
    shell(ctx, content)
}

/// The signed-out page that takes a reset link's code (from the link's
/// fragment, filled in by the page's script, or pasted) and a new password.
pub fn reset_password(csrf: &str, message: Option<Flash>, echo: &FormEcho) -> String {
    let flash = message.map(flash_view);
    let body = view! {
        <div class="login-wrap">
            <div class="card login">
                <div class="brand"><span class="brand-mark"></span>"Nubo"</div>
                <p class="muted center">"Choose a new password."</p>
                {flash}
                <form class="stack" method="post" action="/reset-password" data-testid="reset-form">
                    <input type="hidden" name="csrf_token" value=csrf.to_string()/>
                    <label>"Reset code (from the link)"
                        <input type="text" name="code" data-fill-from-hash required autocomplete="off" spellcheck="false"
                            value=echo.value("code", "") aria-invalid=echo.invalid("code")/>
                        {echo.error_for("code")}
                    </label>
                    {crate::forms::new_password_inputs(echo, "New password again")}
                    <button type="submit">"Set the password"</button>
                </form>
                <p class="center"><a href="/login">"Sign in"</a></p>
            </div>
        </div>
    };
    document("Reset your password", body)
}
