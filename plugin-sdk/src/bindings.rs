//! The bindings `wit_bindgen` generates from `wit/plugin.wit`, in this one module.
//! The rest of the SDK names them only through the re-exports in `types.rs`.
// The generated glue lowers and lifts values across the component ABI by hand.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    world: "plugin",
    path: "wit",
    // `grantbox_sdk::export!` expands in the plugin's crate, so the export glue
    // must be reachable from there: a `#[macro_export]`ed macro whose paths
    // start at this crate (`extern crate self as grantbox_sdk` in lib.rs makes
    // them resolve inside the SDK too).
    pub_export_macro: true,
    export_macro_name: "__export_grant_bindings",
    default_bindings_module: "::grantbox_sdk::bindings",
    runtime_path: "::grantbox_sdk::__private::wit_bindgen::rt",
    additional_derives: [PartialEq, Eq],
});
