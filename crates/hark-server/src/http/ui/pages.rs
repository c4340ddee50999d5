//! The pages' HTML: one shell around each page's markup (ui/*.html), which its script module
//! (ui/*.js) brings to life, and the sign-in forms, which work without any script.

use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{Html, IntoResponse, Response};

/// Pages of the signed-in app.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Library,
    Upload,
    Inbox,
    Settings,
    Note,
}

impl Page {
    /// Where the page is (a note's page is under `/notes/`).
    pub fn path(self) -> &'static str {
        match self {
            Page::Library => "/",
            Page::Upload => "/upload",
            Page::Inbox => "/inbox",
            Page::Settings => "/settings",
            Page::Note => "/notes/",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Page::Library => "Library",
            Page::Upload => "Upload",
            Page::Inbox => "Inbox",
            Page::Settings => "Settings",
            Page::Note => "Note",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Page::Library => "library",
            Page::Upload => "upload",
            Page::Inbox => "inbox",
            Page::Settings => "settings",
            Page::Note => "note",
        }
    }

    fn markup(self) -> &'static str {
        match self {
            Page::Library => include_str!("../../../ui/library.html"),
            Page::Upload => include_str!("../../../ui/upload.html"),
            Page::Inbox => include_str!("../../../ui/inbox.html"),
            Page::Settings => include_str!("../../../ui/settings.html"),
            Page::Note => include_str!("../../../ui/note.html"),
        }
    }
}

/// Who is signed in, as a page shows it.
pub struct Visitor<'a> {
    pub email: &'a str,
    pub user_id: String,
    pub csrf: String,
}

/// A note as its page names it.
pub struct NoteView<'a> {
    pub id: &'a str,
    pub title: &'a str,
}

/// A page of the app; the note page is given its note.
pub fn app(page: Page, visitor: &Visitor<'_>, note: Option<NoteView<'_>>) -> Response {
    let (data, title, markup) = match note {
        Some(note) => (
            format!(" data-note=\"{}\"", escape(note.id)),
            note.title,
            page.markup().replace("{{title}}", &escape(note.title)),
        ),
        None => (String::new(), page.title(), page.markup().to_owned()),
    };
    let main = format!(
        "<main id=\"main\" data-page=\"{}\"{data}>\n{markup}</main>",
        page.name(),
    );
    document(title, Some((Some(page), visitor)), &main)
}

pub fn not_found(visitor: &Visitor<'_>) -> Response {
    let main = "<main id=\"main\"><h1>Not found</h1>\
        <p>There is no such note, or it is not yours to see.</p>\
        <p><a href=\"/\">Back to the library</a></p></main>";
    document("Not found", Some((None, visitor)), main)
}

pub fn unavailable(visitor: &Visitor<'_>) -> Response {
    let main = "<main id=\"main\"><h1>Unavailable</h1>\
        <p>Hark cannot reach its database just now. Try again in a moment.</p></main>";
    document("Unavailable", Some((None, visitor)), main)
}

/// A page with a heading and one paragraph, for a signed-out visitor.
pub fn message(title: &str, text: &str) -> Response {
    let main = format!(
        "<main id=\"main\"><h1>{}</h1><p>{}</p><p><a href=\"/\">Go to Hark</a></p></main>",
        escape(title),
        escape(text)
    );
    document(title, None, &main)
}

/// What a sign-in or registration form shows again after a failure.
#[derive(Default)]
pub struct SignForm<'a> {
    pub email: &'a str,
    pub error: Option<String>,
    pub next: &'a str,
    pub open_registration: bool,
}

pub fn sign_in(form: &SignForm<'_>) -> Response {
    let action = if form.next == "/" {
        "/signin".to_owned()
    } else {
        format!(
            "/signin?next={}",
            percent_encoding::utf8_percent_encode(form.next, percent_encoding::NON_ALPHANUMERIC)
        )
    };
    let register = if form.open_registration {
        "<p>New here? <a href=\"/register\">Register</a></p>"
    } else {
        ""
    };
    let main = format!(
        "<main id=\"main\" class=\"narrow\"><h1>Sign in</h1>{}\
         <form method=\"post\" action=\"{}\" class=\"stack\">{}\
         <button type=\"submit\">Sign in</button></form>{register}</main>",
        error(form),
        escape(&action),
        credential_fields(form.email, "current-password", ""),
    );
    document("Sign in", None, &main)
}

pub fn register(form: &SignForm<'_>) -> Response {
    let main = format!(
        "<main id=\"main\" class=\"narrow\"><h1>Register</h1>{}\
         <form method=\"post\" action=\"/register\" class=\"stack\">{}\
         <p class=\"hint\" id=\"password-hint\">At least 8 characters.</p>\
         <button type=\"submit\">Register</button></form>\
         <p>Have an account? <a href=\"/signin\">Sign in</a></p></main>",
        error(form),
        credential_fields(
            form.email,
            "new-password",
            " minlength=\"8\" aria-describedby=\"password-hint\""
        ),
    );
    document("Register", None, &main)
}

/// The email and password fields; `password_attributes` are added to the password input.
fn credential_fields(email: &str, password_kind: &str, password_attributes: &str) -> String {
    format!(
        "<label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"{password_kind}\" required{password_attributes}>",
        escape(email)
    )
}

fn error(form: &SignForm<'_>) -> String {
    form.error.as_deref().map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    })
}

/// The whole document: head, the navigation when someone is signed in (with the page of the
/// app it shows, if any), and `main`.
fn document(title: &str, signed_in: Option<(Option<Page>, &Visitor<'_>)>, main: &str) -> Response {
    // The page's own module loads beside app.js rather than after it.
    let preload = match signed_in {
        Some((Some(page), _)) => format!(
            "<link rel=\"modulepreload\" href=\"/ui/{}.js\">",
            page.name()
        ),
        _ => String::new(),
    };
    let (meta, header) = match signed_in {
        Some((current, visitor)) => (
            format!(
                "<meta name=\"csrf-token\" content=\"{}\">\
                 <meta name=\"user-id\" content=\"{}\">",
                escape(&visitor.csrf),
                escape(&visitor.user_id)
            ),
            navigation(current, visitor),
        ),
        None => (
            String::new(),
            "<header><nav aria-label=\"Main\"><a class=\"brand\" href=\"/\">Hark</a></nav></header>"
                .to_owned(),
        ),
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Hark</title>{meta}\
         <link rel=\"icon\" href=\"/ui/icon.svg\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/ui/style.css\">\
         <script type=\"module\" src=\"/ui/app.js\"></script>{preload}</head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>{header}\n{main}\n</body></html>\n",
        escape(title)
    );
    let mut response = Html(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn navigation(current: Option<Page>, visitor: &Visitor<'_>) -> String {
    let link = |page: Page| {
        let here = if Some(page) == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{}\"{here}>{}</a>", page.path(), page.title())
    };
    format!(
        "<header><nav aria-label=\"Main\"><a class=\"brand\" href=\"/\">Hark</a>\
         {}{}{}{}\
         <span class=\"who\">{}</span>\
         <form method=\"post\" action=\"/signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" class=\"link\">Sign out</button></form></nav></header>",
        link(Page::Library),
        link(Page::Upload),
        link(Page::Inbox),
        link(Page::Settings),
        escape(visitor.email),
        escape(&visitor.csrf)
    )
}

/// Text made safe for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
