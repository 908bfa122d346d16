//! What device a session runs on, as told by its User-Agent.

use std::fmt;
use std::str::FromStr;

use super::user::InvalidInput;

/// The seed's device classes (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    IPhone,
    Android,
    IPad,
    Mac,
    Windows,
    Linux,
    Mobile,
    Unknown,
}

/// The broad shape of a device, for an icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Phone,
    Tablet,
    Computer,
    Other,
}

impl DeviceClass {
    const ALL: [DeviceClass; 8] = [
        DeviceClass::IPhone,
        DeviceClass::Android,
        DeviceClass::IPad,
        DeviceClass::Mac,
        DeviceClass::Windows,
        DeviceClass::Linux,
        DeviceClass::Mobile,
        DeviceClass::Unknown,
    ];

    /// The stored and displayed name, as in the seed.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceClass::IPhone => "iPhone",
            DeviceClass::Android => "Android",
            DeviceClass::IPad => "iPad",
            DeviceClass::Mac => "Mac",
            DeviceClass::Windows => "Windows",
            DeviceClass::Linux => "Linux",
            DeviceClass::Mobile => "Mobile",
            DeviceClass::Unknown => "Unknown",
        }
    }

    /// The icon family of this class.
    pub const fn kind(self) -> DeviceKind {
        match self {
            DeviceClass::IPhone | DeviceClass::Android | DeviceClass::Mobile => DeviceKind::Phone,
            DeviceClass::IPad => DeviceKind::Tablet,
            DeviceClass::Mac | DeviceClass::Windows | DeviceClass::Linux => DeviceKind::Computer,
            DeviceClass::Unknown => DeviceKind::Other,
        }
    }
}

impl DeviceKind {
    /// The JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Phone => "phone",
            DeviceKind::Tablet => "tablet",
            DeviceKind::Computer => "computer",
            DeviceKind::Other => "other",
        }
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceClass {
    type Err = std::convert::Infallible;

    /// Unrecognised stored values read as `Unknown`: a display label is not worth failing a
    /// request over.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::ALL
            .into_iter()
            .find(|class| class.as_str() == s)
            .unwrap_or(DeviceClass::Unknown))
    }
}

/// The name a user gives the device at sign-in ("work laptop"), shown in every session
/// list of the account: trimmed, at most [`Self::MAX_CHARS`] characters, and nothing that
/// could make it lie on screen or break a store. Control characters (C0, DEL, C1: NUL
/// breaks PostgreSQL, line breaks break lists), line and paragraph separators and
/// bidirectional controls (overrides and isolates: U+202E before "enohpi" shows "iphone") are
/// refused; emoji sequences with joiners and variation selectors are fine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceName(String);

impl DeviceName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Reads a name as typed; a blank one is no name.
    ///
    /// # Errors
    /// [`InvalidInput`] for a name that is too long or has a character refused above.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidInput> {
        let invalid = |message| InvalidInput {
            field: "device_name",
            message,
        };
        let name = raw.trim();
        if name.is_empty() {
            return Ok(None);
        }
        if name.len() > Self::MAX_CHARS * 4 || name.chars().count() > Self::MAX_CHARS {
            return Err(invalid("must be at most 100 characters"));
        }
        if name
            .chars()
            .any(|c| c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(invalid(
                "must not contain control characters, line separators or text-direction \
                 controls",
            ));
        }
        Ok(Some(Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Unicode's `Bidi_Control` characters: the Arabic letter mark, the left-to-right and
/// right-to-left marks, embeddings, overrides and isolates (U+061C, U+200E–U+200F,
/// U+202A–U+202E, U+2066–U+2069). They reorder the text around them on screen.
pub const fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// What the User-Agent says about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub class: DeviceClass,
    /// Browser or app name, e.g. "Chrome", when the parser knows it.
    pub browser: Option<String>,
}

impl DeviceInfo {
    /// A device nothing is known about.
    pub const fn unknown() -> Self {
        Self {
            class: DeviceClass::Unknown,
            browser: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_trimmed_and_blank_is_none() {
        assert_eq!(
            DeviceName::parse("  work laptop \n")
                .unwrap()
                .unwrap()
                .as_str(),
            "work laptop"
        );
        assert_eq!(DeviceName::parse(" \t "), Ok(None));
        assert_eq!(DeviceName::parse(""), Ok(None));
        // Emoji sequences keep their joiners and variation selectors.
        let family = "Anna's \u{1F469}\u{200D}\u{1F467} \u{2764}\u{FE0F}";
        assert_eq!(DeviceName::parse(family).unwrap().unwrap().as_str(), family);
        assert!(DeviceName::parse(&"é".repeat(100)).unwrap().is_some());
    }

    #[test]
    fn device_names_that_break_stores_or_lie_on_screen_are_refused() {
        for bad in [
            "work\u{0}laptop".to_owned(),
            "work\nlaptop".to_owned(),
            "work\tlaptop".to_owned(),
            "bell\u{7}".to_owned(),
            "del\u{7F}x".to_owned(),
            "c1\u{85}x".to_owned(),
            "c1\u{9B}31m".to_owned(),
            "\u{202E}enohpi".to_owned(),
            "a\u{202A}b".to_owned(),
            "a\u{202D}b".to_owned(),
            "a\u{2066}b\u{2069}".to_owned(),
            "a\u{2067}b".to_owned(),
            "a\u{2068}b".to_owned(),
            "a\u{200F}b".to_owned(),
            "a\u{2028}b".to_owned(),
            "x".repeat(101),
            "é".repeat(101),
        ] {
            let refused = DeviceName::parse(&bad).unwrap_err();
            assert_eq!(refused.field, "device_name", "{bad:?}");
        }
    }
}
