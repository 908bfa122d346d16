// figment::Jail closures return figment::Result, whose error is large by design.
#![allow(clippy::result_large_err)]

use figment::Jail;

use super::*;

const SECRET: &str = "a-production-secret-of-at-least-32-bytes";

#[test]
fn the_seeds_variable_names_are_accepted_as_they_are() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("SESSION_TIMEOUT_EMPLOYEE", "3600");
        jail.set_env("MAX_SESSIONS_GUEST", "9");
        jail.set_env("SESSION_REFRESH_THRESHOLD", "120");
        jail.set_env("ACCESS_TOKEN_TTL", "60");
        jail.set_env("BIND_ADDR", "0.0.0.0:9000");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        let policy = settings.session_policy();
        assert_eq!(
            policy.roles.get(Role::HotelEmployee).timeout,
            Duration::hours(1)
        );
        assert_eq!(policy.roles.get(Role::Guest).max_sessions, 9);
        assert_eq!(policy.refresh_threshold, Duration::minutes(2));
        assert_eq!(policy.access_token_ttl, Duration::minutes(1));
        assert_eq!(settings.bind_addr.port(), 9000);
        Ok(())
    });
}

#[test]
fn files_layer_under_the_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "default.toml",
            "[roles.vendor_admin]\ntimeout = 100\nabsolute_lifetime = 1000\nmax_sessions = 1\non_limit = \"reject\"\n",
        )?;
        jail.create_file("staging.toml", "[jwt]\nissuer = \"staging\"\n")?;
        jail.set_env("SESSIOND_ENV", "staging");
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("SESSIOND_JWT__AUDIENCE", "hotels");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        let vendor = settings.session_policy().roles.get(Role::VendorAdmin);
        assert_eq!(vendor.on_limit, LimitAction::Reject);
        assert_eq!(vendor.max_sessions, 1);
        assert_eq!(settings.jwt.issuer, "staging");
        assert_eq!(settings.jwt.audience, "hotels");
        Ok(())
    });
}

#[test]
fn a_missing_weak_or_default_secret_is_refused_outside_dev_mode() {
    Jail::expect_with(|jail| {
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("JWT_SECRET", "short");
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("JWT_SECRET", DEV_JWT_SECRET);
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("SESSIOND_ENV", "dev");
        assert!(Settings::load(jail.directory()).is_ok());
        Ok(())
    });
}

#[test]
fn impossible_policies_are_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("SESSIOND_ENV", "dev");
        jail.set_env("MAX_SESSIONS_ADMIN", "0");
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("MAX_SESSIONS_ADMIN", "2");
        jail.set_env("SESSION_TIMEOUT_ADMIN", "999999999");
        assert!(Settings::load(jail.directory()).is_err());
        Ok(())
    });
}

#[test]
fn the_shipped_default_toml_says_what_the_code_does() {
    // The code's defaults come from the domain's policy; the shipped file spells them out
    // for operators. Any drift between the two fails here, key by key.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
    let from_file: Settings = Figment::new()
        .merge(Toml::file_exact(&shipped))
        .extract()
        .expect("config/default.toml parses");
    assert_eq!(
        format!("{from_file:#?}"),
        format!("{:#?}", Settings::default())
    );
    assert_eq!(from_file.session_policy(), SessionPolicy::default());
}
