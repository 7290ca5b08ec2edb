//! One function per page. Each returns a complete HTML document.

use leptos::prelude::*;

use crate::layout::{document, flash_view, shell};
use crate::{Flash, PageContext};

/// The sign-in page. `error` is shown above the form.
pub fn login(csrf: &str, error: Option<String>, next: &str) -> String {
    let flash = error.map(|e| flash_view(Flash::Error(e)));
    let body = view! {
        <div class="login-wrap">
            <div class="card login">
                <div class="brand"><span class="brand-mark"></span>"Nubo"</div>
                <p class="muted center">"Sign in to your workspaces, repositories and pipelines."</p>
                {flash}
                <form class="stack" method="post" action="/login">
                    <input type="hidden" name="csrf_token" value=csrf.to_string()/>
                    <input type="hidden" name="next" value=next.to_string()/>
                    <label>"User name" <input type="text" name="username" autocomplete="username" required autofocus/></label>
                    <label>"Password" <input type="password" name="password" autocomplete="current-password" required/></label>
                    <button type="submit">"Sign in"</button>
                </form>
            </div>
        </div>
    };
    document("Sign in", body)
}

/// The dashboard: where to go next.
pub fn dashboard(ctx: &PageContext) -> String {
    let tiles = [
        (
            "/repos",
            "Repositories",
            "Git repositories, encrypted at rest, over SSH and HTTPS.",
        ),
        (
            "/workspaces",
            "Workspaces",
            "Editor, file tree and terminals in your browser.",
        ),
        (
            "/projects",
            "Builds",
            "Build projects with buildspec.yml: live logs, artifacts, history.",
        ),
        (
            "/deployments",
            "Deployments",
            "Applications, deployment groups and their targets.",
        ),
    ];
    let tiles = tiles
        .into_iter()
        .map(|(href, title, text)| {
            view! { <a class="tile" href=href><h3>{title}</h3><p>{text}</p></a> }
        })
        .collect_view();
    let content = view! {
        <section class="card">
            <h2>{format!("Welcome, {}", ctx.viewer.name)}</h2>
            <p class="muted">"Nubo is your team's cloud IDE, git hosting and build-and-deploy runner in one server."</p>
        </section>
        <div class="grid">{tiles}</div>
    };
    shell(ctx, content)
}

/// The sections that later releases fill: an honest empty state for each.
#[derive(Debug, Clone, Copy)]
pub enum Section {
    Workspaces,
    Pipelines,
    Deployments,
}

pub fn empty_section(ctx: &PageContext, section: Section) -> String {
    let (heading, text) = match section {
        Section::Workspaces => (
            "No workspaces yet",
            "Workspaces give you an editor and terminals for a repository.",
        ),
        Section::Pipelines => (
            "No pipelines yet",
            "Pipelines build, test and deploy your repositories on every push.",
        ),
        Section::Deployments => (
            "No deployments yet",
            "Deployments of your applications to their targets appear here.",
        ),
    };
    let content = view! {
        <section class="card empty" data-testid="empty-state">
            <h2>{heading}</h2>
            <p>{text}</p>
        </section>
    };
    shell(ctx, content)
}

/// The account page: change password.
pub fn account(ctx: &PageContext) -> String {
    let content = view! {
        <section class="card">
            <h2>"Change password"</h2>
            <form class="stack" method="post" action="/account/password">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"Current password" <input type="password" name="current_password" autocomplete="current-password" required/></label>
                <label>"New password" <input type="password" name="new_password" autocomplete="new-password" minlength="8" required/></label>
                <label>"Repeat new password" <input type="password" name="confirm_password" autocomplete="new-password" minlength="8" required/></label>
                <button type="submit">"Change password"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// A row of the API token list.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub description: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// API tokens: list, create (the new secret shown once), revoke.
pub fn tokens(ctx: &PageContext, rows: Vec<TokenRow>, new_token: Option<String>) -> String {
    let new_token = new_token.map(|token| {
        view! {
            <section class="card">
                <h2>"Your new token"</h2>
                <p class="muted">"Copy it now: Nubo stores only a hash and cannot show it again."</p>
                <div class="secret"><code id="new-token" data-testid="new-token">{token}</code>
                    <button type="button" class="secondary" data-copy="new-token" hidden>"Copy"</button></div>
            </section>
        }
    });
    let list = if rows.is_empty() {
        view! { <p class="muted">"No tokens yet."</p> }.into_any()
    } else {
        let csrf = ctx.csrf.clone();
        let rows = rows
            .into_iter()
            .map(|row| {
                let action = format!("/account/tokens/{}/revoke", row.id);
                let last_used = match row.last_used_at {
                    Some(t) => view! { <time datetime=t.clone() data-relative>{t.clone()}</time> }.into_any(),
                    None => view! { <span class="muted">"never"</span> }.into_any(),
                };
                view! {
                    <tr>
                        <td>{row.description}</td>
                        <td><code>{format!("{}…", row.prefix)}</code></td>
                        <td><time datetime=row.created_at.clone() data-relative>{row.created_at.clone()}</time></td>
                        <td>{last_used}</td>
                        <td>
                            <form class="inline" method="post" action=action data-confirm="Revoke this token? Programs using it will stop working.">
                                <input type="hidden" name="csrf_token" value=csrf.clone()/>
                                <button type="submit" class="danger">"Revoke"</button>
                            </form>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"Description"</th><th>"Token"</th><th>"Created"</th><th>"Last used"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let content = view! {
        {new_token}
        <section class="card">
            <h2>"Create a token"</h2>
            <p class="muted">"Use a token as " <code>"Authorization: Bearer <token>"</code> " on the API."</p>
            <form class="stack" method="post" action="/account/tokens">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"Description" <input type="text" name="description" maxlength="200" placeholder="CI on my laptop" required/></label>
                <button type="submit">"Create token"</button>
            </form>
        </section>
        <section class="card"><h2>"Your tokens"</h2>{list}</section>
    };
    shell(ctx, content)
}

/// A row of the admin's user list.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub created_at: String,
}

/// Admin: list, create, disable and enable users.
pub fn admin_users(ctx: &PageContext, rows: Vec<UserRow>) -> String {
    let csrf = ctx.csrf.clone();
    let viewer = ctx.viewer.name.clone();
    let rows = rows
        .into_iter()
        .map(|row| {
            let (action, label, confirm) = if row.disabled {
                (format!("/admin/users/{}/enable", row.name), "Enable", None)
            } else {
                (
                    format!("/admin/users/{}/disable", row.name),
                    "Disable",
                    Some(format!("Disable {}? They will be signed out everywhere.", row.name)),
                )
            };
            let toggle = (row.name != viewer).then(|| {
                view! {
                    <form class="inline" method="post" action=action data-confirm=confirm>
                        <input type="hidden" name="csrf_token" value=csrf.clone()/>
                        <button type="submit" class="danger">{label}</button>
                    </form>
                }
            });
            let state = if row.disabled {
                view! { <span class="badge off">"disabled"</span> }
            } else {
                view! { <span class="badge on">"active"</span> }
            };
            view! {
                <tr data-user=row.name.clone()>
                    <td>{row.name.clone()}</td>
                    <td>{if row.admin { "admin" } else { "user" }}</td>
                    <td>{state}</td>
                    <td><time datetime=row.created_at.clone() data-relative>{row.created_at.clone()}</time></td>
                    <td>{toggle}</td>
                </tr>
            }
        })
        .collect_view();
    let content = view! {
        <section class="card">
            <h2>"Create a user"</h2>
            <form class="stack" method="post" action="/admin/users">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"User name" <input type="text" name="username" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}" required/></label>
                <label>"Initial password" <input type="password" name="password" autocomplete="new-password" minlength="8" required/></label>
                <label class="check"><input type="checkbox" name="admin" value="true"/>"Administrator"</label>
                <button type="submit">"Create user"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Users"</h2>
            <table>
                <thead><tr><th>"Name"</th><th>"Role"</th><th>"State"</th><th>"Created"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    };
    shell(ctx, content)
}

/// A full-page message for errors such as 404 (no shell: works signed out).
pub fn message(title: &str, text: &str) -> String {
    let body = view! {
        <div class="login-wrap">
            <div class="card login">
                <div class="brand"><span class="brand-mark"></span>"Nubo"</div>
                <h2>{title.to_string()}</h2>
                <p>{text.to_string()}</p>
                <p><a href="/">"Back to the dashboard"</a></p>
            </div>
        </div>
    };
    document(title, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Nav, Viewer};

    fn ctx() -> PageContext {
        PageContext {
            title: "Dashboard".into(),
            nav: Nav::Dashboard,
            viewer: Viewer {
                name: "<ann>".into(),
                admin: true,
                must_change_password: false,
            },
            csrf: "tok\"en".into(),
            flash: None,
        }
    }

    #[test]
    fn text_and_attributes_are_escaped() {
        let html = dashboard(&ctx());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("&lt;ann&gt;"), "{html}");
        assert!(!html.contains("<ann>"));
        assert!(!html.contains("value=\"tok\"en\""));
    }

    #[test]
    fn current_nav_entry_is_marked() {
        let html = dashboard(&ctx());
        assert!(
            html.contains(r#"<a href="/" aria-current="page">Dashboard</a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/repos">Repositories</a>"#),
            "{html}"
        );
        assert!(html.contains("/admin/users"));
    }

    #[test]
    fn non_admins_do_not_see_the_users_link() {
        let mut c = ctx();
        c.viewer.admin = false;
        assert!(!dashboard(&c).contains("/admin/users"));
    }
}

/// A row of the repository list.
#[derive(Debug, Clone)]
pub struct RepoRow {
    pub name: String,
    pub description: String,
    pub owner: String,
    pub created_at: String,
}

/// Repositories: the ones I can access, and a form to create one.
pub fn repos(ctx: &PageContext, rows: Vec<RepoRow>) -> String {
    let list = if rows.is_empty() {
        view! {
            <section class="card empty" data-testid="empty-state">
                <h2>"No repositories yet"</h2>
                <p>"Create one below, then push to it with git."</p>
            </section>
        }
        .into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|r| {
                let href = format!("/repos/{}", r.name);
                view! {
                    <tr data-repo=r.name.clone()>
                        <td><a href=href>{r.name.clone()}</a></td>
                        <td>{r.description}</td>
                        <td>{r.owner}</td>
                        <td><time datetime=r.created_at.clone() data-relative>{r.created_at.clone()}</time></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section class="card">
                <table>
                    <thead><tr><th>"Name"</th><th>"Description"</th><th>"Owner"</th><th>"Created"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
        .into_any()
    };
    let content = view! {
        {list}
        <section class="card">
            <h2>"Create a repository"</h2>
            <form class="stack" method="post" action="/repos">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"Name" <input type="text" name="name" maxlength="100" pattern="[A-Za-z0-9._\\-]{1,100}" placeholder="my-app" required/></label>
                <label>"Description" <input type="text" name="description" maxlength="1000"/></label>
                <button type="submit">"Create repository"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// What the repository page shows.
#[derive(Debug, Clone)]
pub struct RepoPage {
    pub name: String,
    pub description: String,
    pub owner: String,
    pub clone_url_http: String,
    pub clone_url_ssh: String,
    /// The viewer's user name, for the credential instructions.
    pub user: String,
    /// Recent ref updates, newest first.
    pub pushes: Vec<PushRow>,
    /// The branch HEAD points to, when the repository has commits.
    pub head: Option<String>,
    pub branches: Vec<String>,
    pub tags: Vec<String>,
    /// The README rendered to HTML (raw HTML in it is escaped).
    pub readme_html: Option<String>,
    /// Webhooks with their latest deliveries; `None` when the viewer may not manage them.
    pub webhooks: Option<Vec<WebhookRow>>,
}

/// A webhook and its recent deliveries, for the repository page.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub filter: String,
    /// (event, state, attempts, last status or error)
    pub deliveries: Vec<(String, String, i64, String)>,
}

/// One pushed ref update.
#[derive(Debug, Clone)]
pub struct PushRow {
    pub ref_name: String,
    pub old: String,
    pub new: String,
    pub pusher: String,
    pub time: String,
}

fn short(sha: &str) -> String {
    if sha.chars().all(|c| c == '0') {
        "—".to_string()
    } else {
        sha.chars().take(10).collect()
    }
}

/// One repository: clone URL with a copy button and the commands to use it.
pub fn repo(ctx: &PageContext, repo: RepoPage) -> String {
    let clone = format!("git clone {}", repo.clone_url_http);
    let delete_action = format!("/repos/{}/delete", repo.name);
    let confirm = format!(
        "Delete {} and all its history? This cannot be undone.",
        repo.name
    );
    let description =
        (!repo.description.is_empty()).then(|| view! { <p>{repo.description.clone()}</p> });
    let pushes = if repo.pushes.is_empty() {
        view! { <p class="muted">"Nothing pushed yet."</p> }.into_any()
    } else {
        let rows = repo
            .pushes
            .iter()
            .map(|p| {
                view! {
                    <tr>
                        <td><code>{p.ref_name.clone()}</code></td>
                        <td><code>{short(&p.old)}</code>" → "<code>{short(&p.new)}</code></td>
                        <td>{p.pusher.clone()}</td>
                        <td><time datetime=p.time.clone() data-relative>{p.time.clone()}</time></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"Ref"</th><th>"Change"</th><th>"Pusher"</th><th>"When"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let name = repo.name.clone();
    let code = repo.head.clone().map(|head| {
        let refs = |list: &Vec<String>, kind: &'static str| {
            list.iter()
                .map(|r| {
                    let href = format!("/repos/{}/{kind}/{r}", name);
                    view! { <a class="badge" href=href>{r.clone()}</a> }
                })
                .collect_view()
        };
        let branches = refs(&repo.branches, "tree");
        let tags = refs(&repo.tags, "tree");
        view! {
            {repo_tabs(&name, &head)}
            <section class="card" data-testid="refs">
                <h2>"Branches"</h2><div class="refs">{branches}</div>
                <h2>"Tags"</h2><div class="refs">{tags}</div>
            </section>
        }
    });
    let webhooks = repo.webhooks.clone().map(|hooks| {
        let csrf = ctx.csrf.clone();
        let action = format!("/repos/{}/webhooks", repo.name);
        let list = hooks
            .into_iter()
            .map(|h| {
                let remove = format!("/repos/{}/webhooks/{}/delete", repo.name, h.id);
                let deliveries = h
                    .deliveries
                    .into_iter()
                    .map(|(event, state, attempts, last)| {
                        view! { <li><code>{event}</code>" — " {state} {format!(" after {attempts} attempt(s)")} " " <span class="muted">{last}</span></li> }
                    })
                    .collect_view();
                view! {
                    <div class="card" data-webhook=h.url.clone()>
                        <p><code>{h.url.clone()}</code>" " <span class="muted">{h.filter}</span></p>
                        <ul>{deliveries}</ul>
                        <form method="post" action=remove>
                            <input type="hidden" name="csrf_token" value=csrf.clone()/>
                            <button type="submit" class="danger">"Remove webhook"</button>
                        </form>
                    </div>
                }
            })
            .collect_view();
        view! {
            <section class="card" data-testid="webhooks">
                <h2>"Webhooks"</h2>
                {list}
                <form class="stack" method="post" action=action>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <label>"Payload URL" <input type="text" name="url" placeholder="https://ci.example.org/hook" required/></label>
                    <label>"Secret (16 characters or more; signs every payload)" <input type="password" name="secret" minlength="16" autocomplete="new-password" required/></label>
                    <label>"Branches (comma-separated globs, empty for all)" <input type="text" name="branches"/></label>
                    <button type="submit">"Add webhook"</button>
                </form>
            </section>
        }
    });
    let readme = repo.readme_html.clone().map(|html| {
        view! { <section class="card markdown" data-testid="readme" inner_html=html></section> }
    });
    let content = view! {
        {code}
        {readme}
        <section class="card">
            {description}
            <p class="muted">"Owner: " {repo.owner.clone()}</p>
            <h2>"Clone with git"</h2>
            <div class="secret"><code id="clone-http" data-testid="clone-url">{repo.clone_url_http.clone()}</code>
                <button type="button" class="secondary" data-copy="clone-http" hidden>"Copy"</button></div>
            <p>"When git asks, give a " <a href="/account/git-credentials">"git credential"</a>
               ", or your user name " <code>{repo.user.clone()}</code> " and an " <a href="/account/tokens">"API token"</a>
               " as the password. To let git remember it for a while:"</p>
            <pre>{format!("git config --global credential.helper cache\n{clone}")}</pre>
        </section>
        <section class="card" data-testid="open-workspace">
            <h2>"Code in the browser"</h2>
            <p>"A workspace checks this repository out with a terminal, an editor and git set up for you."</p>
            <form class="inline" method="post" action="/workspaces">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <input type="hidden" name="repo" value=repo.name.clone()/>
                <label>"Name " <input type="text" name="name" maxlength="64" value=repo.name.clone() required/></label>
                <button type="submit">"Create a workspace"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Clone over SSH"</h2>
            <div class="secret"><code id="clone-ssh" data-testid="clone-url-ssh">{repo.clone_url_ssh.clone()}</code>
                <button type="button" class="secondary" data-copy="clone-ssh" hidden>"Copy"</button></div>
            <p>"Add your public key under " <a href="/account/git-credentials">"Git credentials"</a> " first."</p>
        </section>
        <section class="card" data-testid="pushes">
            <h2>"Recent pushes"</h2>
            {pushes}
        </section>
        {webhooks}
        <section class="card">
            <h2>"Delete this repository"</h2>
            <form method="post" action=delete_action data-confirm=confirm>
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit" class="danger">"Delete repository"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// A row of the git credential list.
#[derive(Debug, Clone)]
pub struct GitCredentialRow {
    pub id: String,
    pub username: String,
    /// "all repositories, read-write" and the like.
    pub scope: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A registered SSH key.
#[derive(Debug, Clone)]
pub struct SshKeyRow {
    pub id: String,
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
}

/// SSH keys and HTTPS git credentials: add keys; generate credentials
/// (shown once); list and revoke both.
pub fn git_credentials(
    ctx: &PageContext,
    keys: Vec<SshKeyRow>,
    rows: Vec<GitCredentialRow>,
    new: Option<(String, String)>,
) -> String {
    let key_list = if keys.is_empty() {
        view! { <p class="muted">"No SSH keys yet."</p> }.into_any()
    } else {
        let csrf = ctx.csrf.clone();
        let rows = keys
            .into_iter()
            .map(|k| {
                let action = format!("/account/ssh-keys/{}/delete", k.id);
                view! {
                    <tr data-key=k.fingerprint.clone()>
                        <td><code>{k.fingerprint.clone()}</code></td>
                        <td>{k.algorithm}</td>
                        <td>{k.comment}</td>
                        <td>
                            <form class="inline" method="post" action=action data-confirm="Remove this key? git over SSH stops accepting it.">
                                <input type="hidden" name="csrf_token" value=csrf.clone()/>
                                <button type="submit" class="danger">"Remove"</button>
                            </form>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"Fingerprint"</th><th>"Type"</th><th>"Comment"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let ssh_section = view! {
        <section class="card">
            <h2>"SSH keys"</h2>
            {key_list}
            <form class="stack" method="post" action="/account/ssh-keys">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"Public key" <input type="text" name="public_key" placeholder="ssh-ed25519 AAAA… you@laptop" required/></label>
                <button type="submit">"Add SSH key"</button>
            </form>
        </section>
    };
    let new = new.map(|(username, password)| {
        view! {
            <section class="card">
                <h2>"Your new git credential"</h2>
                <p class="muted">"Copy the password now: Nubo stores only a hash and cannot show it again."</p>
                <p>"User name"</p>
                <div class="secret"><code id="git-username" data-testid="git-username">{username}</code>
                    <button type="button" class="secondary" data-copy="git-username" hidden>"Copy"</button></div>
                <p>"Password"</p>
                <div class="secret"><code id="git-password" data-testid="git-password">{password}</code>
                    <button type="button" class="secondary" data-copy="git-password" hidden>"Copy"</button></div>
            </section>
        }
    });
    let csrf = ctx.csrf.clone();
    let list = if rows.is_empty() {
        view! { <p class="muted">"No git credentials yet."</p> }.into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|r| {
                let action = format!("/account/git-credentials/{}/revoke", r.id);
                let expires = r.expires_at.clone().unwrap_or_else(|| "never".into());
                view! {
                    <tr>
                        <td><code>{r.username}</code></td>
                        <td>{r.scope}</td>
                        <td><time datetime=r.created_at.clone() data-relative>{r.created_at.clone()}</time></td>
                        <td>{expires}</td>
                        <td>
                            <form class="inline" method="post" action=action data-confirm="Revoke this credential? git will stop accepting it.">
                                <input type="hidden" name="csrf_token" value=csrf.clone()/>
                                <button type="submit" class="danger">"Revoke"</button>
                            </form>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table>
                <thead><tr><th>"User name"</th><th>"Scope"</th><th>"Created"</th><th>"Expires"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let content = view! {
        {new}
        {ssh_section}
        <section class="card">
            <h2>"HTTPS git credentials"</h2>
            <p class="muted">"A generated user name and password for git over HTTPS, like CodeCommit's. Temporary, scoped credentials come from the API (" <code>"POST /api/v1/me/temporary-credentials"</code> ")."</p>
            <form method="post" action="/account/git-credentials">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <button type="submit">"Generate credentials"</button>
            </form>
        </section>
        <section class="card"><h2>"Your git credentials"</h2>{list}</section>
    };
    shell(ctx, content)
}

/// One audit log row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub time: String,
    pub user: String,
    pub action: String,
    pub repo: String,
    pub reference: Option<String>,
    pub allowed: bool,
    pub basis: String,
    pub statement: Option<String>,
}

/// Administrators: the newest access decisions.
pub fn audit(ctx: &PageContext, rows: Vec<AuditRow>) -> String {
    let rows = rows
        .into_iter()
        .map(|r| {
            let result = if r.allowed {
                view! { <span class="badge on">"allowed"</span> }
            } else {
                view! { <span class="badge off">"denied"</span> }
            };
            view! {
                <tr>
                    <td><time datetime=r.time.clone() data-relative>{r.time.clone()}</time></td>
                    <td>{r.user}</td>
                    <td><code>{r.action}</code></td>
                    <td>{r.repo}</td>
                    <td><code>{r.reference.unwrap_or_default()}</code></td>
                    <td>{result}</td>
                    <td>{r.basis}" "<span class="muted">{r.statement.unwrap_or_default()}</span></td>
                </tr>
            }
        })
        .collect_view();
    let content = view! {
        <section class="card" data-testid="audit">
            <table>
                <thead><tr><th>"When"</th><th>"User"</th><th>"Action"</th><th>"Repository"</th><th>"Ref"</th><th>"Result"</th><th>"Why"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    };
    shell(ctx, content)
}

/// The simulator's form values and, after a run, its answer.
#[derive(Debug, Clone, Default)]
pub struct Simulation {
    pub user: String,
    pub action: String,
    pub repo: String,
    pub reference: String,
    /// (allowed, basis, statement)
    pub answer: Option<(bool, String, Option<String>)>,
}

/// Administrators: can USER do ACTION on REPO/REF, and which statement decided?
pub fn simulator(ctx: &PageContext, actions: &[&str], sim: Simulation) -> String {
    let options = actions
        .iter()
        .map(|a| {
            let selected = (*a == sim.action).then_some("selected");
            view! { <option value=a.to_string() selected=selected>{a.to_string()}</option> }
        })
        .collect_view();
    let answer = sim.answer.clone().map(|(allowed, basis, statement)| {
        let (class, verdict) = if allowed {
            ("flash ok", "Allowed")
        } else {
            ("flash error", "Denied")
        };
        view! {
            <div class=class data-testid="simulation">
                <strong>{verdict}</strong>" — " {basis} {statement.map(|s| format!(" ({s})"))}
            </div>
        }
    });
    let content = view! {
        {answer}
        <section class="card">
            <form class="stack" method="post" action="/admin/simulator">
                <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                <label>"User" <input type="text" name="user" value=sim.user.clone() required/></label>
                <label>"Action" <select name="action">{options}</select></label>
                <label>"Repository (or secret / parameter name)" <input type="text" name="repo" value=sim.repo.clone() required/></label>
                <label>"Ref (optional)" <input type="text" name="reference" value=sim.reference.clone() placeholder="refs/heads/main"/></label>
                <button type="submit">"Simulate"</button>
            </form>
        </section>
    };
    shell(ctx, content)
}

/// Links shared by the repository browser pages.
fn repo_tabs(repo: &str, rev: &str) -> impl IntoView {
    let code = format!("/repos/{repo}/tree/{rev}");
    let commits = format!("/repos/{repo}/commits/{rev}");
    let home = format!("/repos/{repo}");
    view! {
        <p class="refs">
            <a class="badge" href=home>"Overview"</a>
            <a class="badge" href=code>"Code"</a>
            <a class="badge" href=commits>"Commits"</a>
            <span class="badge">{format!("at {rev}")}</span>
        </p>
    }
}

fn crumbs(repo: &str, rev: &str, path: &str) -> impl IntoView {
    let mut links = vec![(format!("/repos/{repo}/tree/{rev}"), repo.to_string())];
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        links.push((format!("/repos/{repo}/tree/{rev}/{acc}"), part.to_string()));
    }
    let links = links
        .into_iter()
        .map(|(href, name)| view! { <a href=href>{name}</a>" / " })
        .collect_view();
    view! { <div class="crumbs" data-testid="crumbs">{links}</div> }
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct BrowseEntry {
    pub name: String,
    /// `tree`, `blob`, `link` or `commit`.
    pub kind: String,
}

/// A directory of a repository at a revision.
pub fn tree_page(
    ctx: &PageContext,
    repo: &str,
    rev: &str,
    path: &str,
    entries: Vec<BrowseEntry>,
) -> String {
    let base = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let rows = entries
        .into_iter()
        .map(|e| {
            let (icon, href) = match e.kind.as_str() {
                "tree" => (
                    "📁",
                    Some(format!("/repos/{repo}/tree/{rev}/{base}{}", e.name)),
                ),
                "blob" | "link" => (
                    "📄",
                    Some(format!("/repos/{repo}/blob/{rev}/{base}{}", e.name)),
                ),
                _ => ("🔗", None),
            };
            let name = match href {
                Some(h) => view! { <a href=h>{e.name.clone()}</a> }.into_any(),
                None => view! { <span>{e.name.clone()}</span> }.into_any(),
            };
            view! { <tr data-entry=e.name.clone()><td>{icon}</td><td>{name}</td></tr> }
        })
        .collect_view();
    let content = view! {
        {repo_tabs(repo, rev)}
        <section class="card">
            {crumbs(repo, rev, path)}
            <table class="entries"><tbody>{rows}</tbody></table>
        </section>
    };
    shell(ctx, content)
}

/// The highlight.js language for a file name, if one is bundled.
pub fn language_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if name == "dockerfile" || name == "containerfile" {
        return Some("dockerfile");
    }
    let ext = name.rsplit('.').next()?;
    Some(match ext {
        "rs" => "rust",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "ts" | "tsx" => "typescript",
        "py" => "python",
        "go" => "go",
        "sh" | "bash" => "bash",
        "yml" | "yaml" => "yaml",
        "json" => "json",
        "md" | "markdown" => "markdown",
        "css" => "css",
        "html" | "htm" | "xml" | "svg" => "xml",
        "toml" | "ini" | "cfg" => "ini",
        "c" | "h" => "c",
        "cc" | "cpp" | "hpp" | "cxx" => "cpp",
        "java" => "java",
        "sql" => "sql",
        "diff" | "patch" => "diff",
        _ => return None,
    })
}

/// One file at a revision: highlighted text, or a note for binary files.
pub fn blob_page(
    ctx: &PageContext,
    repo: &str,
    rev: &str,
    path: &str,
    text: Option<String>,
    size: usize,
) -> String {
    let raw = format!("/repos/{repo}/raw/{rev}/{path}");
    let body = match text {
        Some(t) => {
            let class = language_of(path)
                .map(|l| format!("language-{l}"))
                .unwrap_or_default();
            view! { <pre class="code"><code class=class data-testid="blob">{t}</code></pre> }
                .into_any()
        }
        None => view! { <p class="muted">{format!("Binary or large file, {size} bytes.")}</p> }
            .into_any(),
    };
    let parent = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let content = view! {
        {repo_tabs(repo, rev)}
        <section class="card">
            {crumbs(repo, rev, parent)}
            <p><code>{path.rsplit('/').next().unwrap_or(path).to_string()}</code>" · " <a href=raw>"raw"</a></p>
            {body}
        </section>
    };
    shell(ctx, content)
}

/// A commit as lists show it.
#[derive(Debug, Clone)]
pub struct CommitRow {
    pub id: String,
    pub summary: String,
    pub author: String,
    /// RFC 3339.
    pub time: String,
}

/// The history of a revision.
pub fn commits_page(ctx: &PageContext, repo: &str, rev: &str, commits: Vec<CommitRow>) -> String {
    let rows = commits
        .into_iter()
        .map(|c| {
            let href = format!("/repos/{repo}/commit/{}", c.id);
            let short: String = c.id.chars().take(10).collect();
            view! {
                <tr data-commit=c.id.clone()>
                    <td><a href=href><code>{short}</code></a></td>
                    <td>{c.summary}</td>
                    <td>{c.author}</td>
                    <td><time datetime=c.time.clone() data-relative>{c.time.clone()}</time></td>
                </tr>
            }
        })
        .collect_view();
    let content = view! {
        {repo_tabs(repo, rev)}
        <section class="card">
            <table><thead><tr><th>"Commit"</th><th>"Summary"</th><th>"Author"</th><th>"When"</th></tr></thead><tbody>{rows}</tbody></table>
        </section>
    };
    shell(ctx, content)
}

/// A file changed by a commit.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub path: String,
    pub change: String,
    pub patch: String,
    pub binary: bool,
}

/// One commit: message, author, and its diff.
pub fn commit_page(
    ctx: &PageContext,
    repo: &str,
    commit: CommitRow,
    message: String,
    parents: Vec<String>,
    changes: Vec<ChangeRow>,
) -> String {
    let parents = parents
        .into_iter()
        .map(|p| {
            let href = format!("/repos/{repo}/commit/{p}");
            let short: String = p.chars().take(10).collect();
            view! { <a href=href><code>{short}</code></a>" " }
        })
        .collect_view();
    let files = changes
        .into_iter()
        .map(|c| {
            let body = if c.binary {
                view! { <p class="muted">"Binary file"</p> }.into_any()
            } else {
                view! { <pre class="code"><code class="language-diff">{c.patch}</code></pre> }
                    .into_any()
            };
            view! {
                <section class="card" data-file=c.path.clone()>
                    <h2><code>{c.path.clone()}</code>" " <span class="badge">{c.change}</span></h2>
                    {body}
                </section>
            }
        })
        .collect_view();
    let tabs = repo_tabs(repo, &commit.id);
    let content = view! {
        {tabs}
        <section class="card">
            <h2 data-testid="commit-summary">{commit.summary.clone()}</h2>
            <pre class="code">{message}</pre>
            <p class="muted">{commit.author}" · " <time datetime=commit.time.clone() data-relative>{commit.time.clone()}</time>
               " · " <code>{commit.id.clone()}</code> " · parents: " {parents}</p>
        </section>
        {files}
    };
    shell(ctx, content)
}

/// A stored value's name and when it last changed (values are never shown).
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub name: String,
    pub updated_at: String,
}

/// The parameter store and the secrets manager: names, a form to set a
/// value, and delete buttons. Values are write-only.
pub fn stores_page(
    ctx: &PageContext,
    parameters: Vec<StoredRow>,
    secrets: Vec<StoredRow>,
) -> String {
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
        view! {
            <section class="card" data-testid=kind>
                <h2>{title}</h2>
                <p class="muted">{hint}</p>
                {list}
                <form class="stack" method="post" action=action>
                    <input type="hidden" name="csrf_token" value=ctx.csrf.clone()/>
                    <label>"Name" <input type="text" name="name" required/></label>
                    <label>"Value (stored encrypted; never shown again)"
                        <textarea name="value" rows="3" autocomplete="off" required></textarea></label>
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
