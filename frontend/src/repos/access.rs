//! A repository's Access tab: sharing without writing JSON. Its owner (or
//! anyone who may manage it) gives a user or group read, write or admin,
//! optionally limited to branches; the policy written for them is shown
//! and editable; and the simulator's answer says who has access and why.

use leptos::prelude::*;

use super::{repo_tabs, RepoNav, Tab};
use crate::layout::shell;
use crate::{FormEcho, PageContext};

/// Access given on this tab: one policy on a user or a group.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `user` or `group`.
    pub kind: String,
    pub principal: String,
    /// `read`, `write`, `admin`, or `custom` once its JSON was edited.
    pub level: String,
    /// The branches pushes are limited to (empty: all).
    pub branches: Vec<String>,
    /// The policy document, pretty-printed.
    pub document: String,
}

/// One user's access, as the policy simulator answers it: (allowed, why).
#[derive(Debug, Clone)]
pub struct AccessRow {
    pub user: String,
    pub read: (bool, String),
    pub push: (bool, String),
    pub manage: (bool, String),
}

/// What the Access tab shows.
#[derive(Debug, Clone)]
pub struct AccessPage {
    pub nav: RepoNav,
    pub head: Option<String>,
    /// The branch the "push" column asks about.
    pub push_branch: String,
    pub grants: Vec<Grant>,
    /// Users with any access, and why.
    pub who: Vec<AccessRow>,
    /// Names to pick from.
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

fn answer((allowed, why): &(bool, String)) -> impl IntoView {
    let (class, word) = if *allowed {
        ("ok", "Yes")
    } else {
        ("muted", "No")
    };
    view! { <td><span class=class>{word}</span>" " <span class="muted small">{why.clone()}</span></td> }
}

fn grant_card(ctx: &PageContext, repo: &str, g: Grant, echo: &FormEcho) -> impl IntoView {
    let revoke = format!("/repos/{repo}/access/revoke");
    let edit = format!("/repos/{repo}/access/policy");
    let limit = if g.branches.is_empty() {
        String::new()
    } else {
        format!(" · pushes to {}", g.branches.join(", "))
    };
    let confirm = format!("Take {} {}'s access away?", g.kind, g.principal);
    // A refused edit of this grant comes back as typed, the reason below.
    let edited =
        echo.value("edit_kind", "") == g.kind && echo.value("edit_principal", "") == g.principal;
    let text = if edited {
        echo.value("document", &g.document)
    } else {
        g.document.clone()
    };
    let error = edited.then(|| echo.error_for("document"));
    view! {
        <div class="card grant" data-grant=format!("{}:{}", g.kind, g.principal)>
            <p><strong>{g.principal.clone()}</strong>" " <span class="badge">{g.kind.clone()}</span>" "
               <span class="badge" data-testid="grant-level">{g.level.clone()}</span>
               <span class="muted">{limit}</span></p>
            <details open=edited>
                <summary>"Policy JSON"</summary>
                <form class="stack" method="post" action=edit>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <input type="hidden" name="edit_kind" value=g.kind.clone()/>
                    <input type="hidden" name="edit_principal" value=g.principal.clone()/>
                    <textarea name="document" rows="12" class="mono" spellcheck="false"
                        aria-invalid=edited.then(|| echo.invalid("document")).flatten()>{crate::forms::textarea_text(text)}</textarea>
                    {error}
                    <button type="submit" class="secondary">"Save policy"</button>
                </form>
            </details>
            <form method="post" action=revoke data-confirm=confirm>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <input type="hidden" name="kind" value=g.kind.clone()/>
                <input type="hidden" name="principal" value=g.principal.clone()/>
                <button type="submit" class="danger">"Remove access"</button>
            </form>
        </div>
    }
}

/// The Access tab; `echo` fills the share form again after a refusal.
pub fn access_page(ctx: &PageContext, page: AccessPage, echo: &FormEcho) -> String {
    let repo = page.nav.name.clone();
    let grants = if page.grants.is_empty() {
        view! { <p class="muted">"Nobody has been given access here yet."</p> }.into_any()
    } else {
        page.grants
            .into_iter()
            .map(|g| grant_card(ctx, &repo, g, echo))
            .collect_view()
            .into_any()
    };
    let who = page
        .who
        .iter()
        .map(|r| {
            view! {
                <tr data-user=r.user.clone()>
                    <td>{r.user.clone()}</td>{answer(&r.read)}{answer(&r.push)}{answer(&r.manage)}
                </tr>
            }
        })
        .collect_view();
    let options = |names: &[String]| {
        names
            .iter()
            .map(|n| view! { <option value=n.clone()></option> })
            .collect_view()
    };
    let kind = echo.value("kind", "user");
    let level = echo.value("level", "read");
    let chosen = |v: &str, current: &str| (v == current).then_some("selected");
    let content = view! {
        {repo_tabs(&page.nav, page.head.as_deref(), Tab::Access)}
        <section class="card" data-testid="share">
            <h2>"Give access"</h2>
            <form class="stack" method="post" action=format!("/repos/{repo}/access")>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                {echo.form_error()}
                <div class="row">
                    <label>"To a"
                        <select name="kind">
                            <option value="user" selected=chosen("user", &kind)>"user"</option>
                            <option value="group" selected=chosen("group", &kind)>"group"</option>
                        </select>
                        {echo.error_for("kind")}
                    </label>
                    <label class="grow">"Name"
                        <input type="text" name="principal" list="principals" required autocomplete="off"
                            value=echo.value("principal", "") aria-invalid=echo.invalid("principal")/>
                        {echo.error_for("principal")}
                    </label>
                </div>
                <datalist id="principals">{options(&page.users)}{options(&page.groups)}</datalist>
                <fieldset>
                    <legend>"Level"</legend>
                    <label class="check"><input type="radio" name="level" value="read" checked=level == "read"/>
                        " Read — clone, fetch and browse"</label>
                    <label class="check"><input type="radio" name="level" value="write" checked=level == "write"/>
                        " Write — read, and push"</label>
                    <label class="check"><input type="radio" name="level" value="admin" checked=level == "admin"/>
                        " Admin — everything, including webhooks, access and deleting it"</label>
                    {echo.error_for("level")}
                </fieldset>
                <label>"Limit pushes to these branches (comma-separated, * allowed; empty for all)"
                    <input type="text" name="branches" placeholder="main, release/*"
                        value=echo.value("branches", "") aria-invalid=echo.invalid("branches")/>
                    {echo.error_for("branches")}
                </label>
                <button type="submit">"Give access"</button>
            </form>
        </section>
        <section class="card" data-testid="grants">
            <h2>"Given here"</h2>
            {grants}
        </section>
        <section class="card" data-testid="who">
            <h2>"Who has access, and why"</h2>
            <p class="muted">"The policy simulator's answer for each user, from every policy, group and rule that applies."</p>
            <table>
                <thead><tr><th>"User"</th><th>"Read"</th><th>{format!("Push to {}", page.push_branch)}</th><th>"Manage"</th></tr></thead>
                <tbody>{who}</tbody>
            </table>
        </section>
    };
    shell(ctx, content)
}
