//! Icons as inline SVG (never emoji, which render as empty boxes where no
//! emoji font is installed). 16 px, drawn with `currentColor`, hidden from
//! screen readers (`aria-hidden`): the text next to them says the same.

use leptos::prelude::*;

/// The icons there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Folder,
    File,
    Submodule,
}

impl Icon {
    /// The path data, on a 16 × 16 grid.
    fn path(self) -> &'static str {
        match self {
            Icon::Folder => "M1.5 3.5A1 1 0 0 1 2.5 2.5h3.6l1.5 1.6h5.9a1 1 0 0 1 1 1v7.4a1 1 0 0 1-1 1H2.5a1 1 0 0 1-1-1z",
            Icon::File => "M3.5 1.5h6l3 3v10h-9zM9.5 1.5v3h3",
            Icon::Submodule => "M6.5 9.5a3 3 0 0 0 4.2 0l2.1-2.1a3 3 0 0 0-4.2-4.2l-.9.9M9.5 6.5a3 3 0 0 0-4.2 0L3.2 8.6a3 3 0 0 0 4.2 4.2l.9-.9",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Icon::Folder => "folder",
            Icon::File => "file",
            Icon::Submodule => "submodule",
        }
    }
}

/// The icon, ready to put in a page.
pub fn icon(which: Icon) -> impl IntoView {
    view! {
        <svg class="icon" data-icon=which.name() viewBox="0 0 16 16" width="16" height="16"
            aria-hidden="true" focusable="false">
            <path d=which.path() fill="none" stroke="currentColor" stroke-width="1.2"
                stroke-linejoin="round" stroke-linecap="round"/>
        </svg>
    }
}
