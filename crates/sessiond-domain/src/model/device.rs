//! What device a session runs on, as told by its User-Agent.

use std::fmt;
use std::str::FromStr;

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
