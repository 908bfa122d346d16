//! Device classification from the User-Agent header (SPEC §1), with woothee: a maintained
//! port of the project's shared User-Agent rules, compiled in (no regex set loaded at
//! start-up, no per-request allocation beyond the result).

use sessiond_domain::model::{DeviceClass, DeviceInfo};
use sessiond_domain::ports::DeviceClassifier;
use woothee::parser::Parser;

/// The `DeviceClassifier` port on woothee.
#[derive(Default)]
pub struct WootheeClassifier {
    parser: Parser,
}

impl std::fmt::Debug for WootheeClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WootheeClassifier")
    }
}

impl WootheeClassifier {
    pub fn new() -> Self {
        Self::default()
    }
}

/// woothee's "don't know" value.
const UNKNOWN: &str = "UNKNOWN";

fn class_of(os: &str, category: &str) -> DeviceClass {
    match os {
        "iPhone" | "iPod" => DeviceClass::IPhone,
        "iPad" => DeviceClass::IPad,
        "Android" => DeviceClass::Android,
        _ if category == "smartphone" || category == "mobilephone" => DeviceClass::Mobile,
        os if os.starts_with("Mac") => DeviceClass::Mac,
        os if os.starts_with("Windows") => DeviceClass::Windows,
        "Linux" | "ChromeOS" | "FreeBSD" | "OpenBSD" | "NetBSD" => DeviceClass::Linux,
        _ => DeviceClass::Unknown,
    }
}

impl DeviceClassifier for WootheeClassifier {
    fn classify(&self, user_agent: &str) -> DeviceInfo {
        let Some(result) = self.parser.parse(user_agent) else {
            return DeviceInfo::unknown();
        };
        let browser =
            (result.name != UNKNOWN && !result.name.is_empty()).then(|| result.name.to_owned());
        DeviceInfo {
            class: class_of(result.os, result.category),
            browser,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_device_classes_are_recognised() {
        let classifier = WootheeClassifier::new();
        let cases = [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                DeviceClass::IPhone,
                Some("Safari"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
                DeviceClass::Android,
                Some("Chrome"),
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                DeviceClass::IPad,
                Some("Safari"),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15",
                DeviceClass::Mac,
                Some("Safari"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
                DeviceClass::Windows,
                Some("Edge"),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                DeviceClass::Linux,
                Some("Firefox"),
            ),
            (
                "Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0)",
                DeviceClass::Mobile,
                None,
            ),
            ("curl/8.5.0", DeviceClass::Unknown, None),
            ("", DeviceClass::Unknown, None),
        ];
        for (ua, class, browser) in cases {
            let info = classifier.classify(ua);
            assert_eq!(info.class, class, "{ua}");
            if let Some(browser) = browser {
                assert_eq!(info.browser.as_deref(), Some(browser), "{ua}");
            }
        }
    }

    #[test]
    fn hostile_strings_classify_as_unknown() {
        let classifier = WootheeClassifier::new();
        // Nothing of a hostile string reaches the result: it classifies as unknown.
        for ua in ["\0\0\0", &"A".repeat(100_000), "Mozilla/5.0 (((((", "😀"] {
            let info = classifier.classify(ua);
            assert_eq!(info.class, DeviceClass::Unknown, "{ua:.40}");
            assert_eq!(info.browser, None, "{ua:.40}");
        }
    }
}
