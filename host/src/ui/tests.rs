//! The user step's pages are built in and an operator's directory replaces
//! them like the others; a broken override fails at load, naming the file.

use super::*;

#[test]
fn the_user_step_pages_render_and_an_operator_overrides_them() {
    let built_in = Ui::load(None).expect("the built-in pages");
    let page = built_in
        .render(
            "user_code.html",
            minijinja::context! { action => "/step", csrf_token => "t", user_code => "AB<CD" },
        )
        .expect("the code entry page");
    // minijinja escapes `/` in HTML; the browser reads `&#x2f;step` as `/step`.
    assert!(page.contains(r#"action="&#x2f;step""#), "{page}");
    assert!(page.contains("AB&lt;CD"), "escaped: {page}");
    let done = built_in
        .render(
            "user_code_done.html",
            minijinja::context! { approved => false, client_name => "TV" },
        )
        .expect("the done page");
    assert!(done.contains("Access denied"), "{done}");

    let dir = tempfile::tempdir().expect("a template directory");
    std::fs::write(
        dir.path().join("user_code_done.html"),
        "{% extends \"base.html\" %}{% block content %}Operator's own: {{ client_name }}{% endblock %}",
    )
    .unwrap();
    let ui = Ui::load(Some(dir.path())).expect("the override loads");
    let done = ui
        .render(
            "user_code_done.html",
            minijinja::context! { approved => true, client_name => "TV" },
        )
        .unwrap();
    assert!(done.contains("Operator's own: TV"), "{done}");

    std::fs::write(dir.path().join("user_code.html"), "{% if %}").unwrap();
    let error = Ui::load(Some(dir.path())).expect_err("a broken override");
    assert!(error.0.contains("user_code.html"), "{error}");
}
