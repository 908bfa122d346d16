//! The platform's roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role; each has its own session policy (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Guest,
    HotelEmployee,
    VendorAdmin,
    SystemAdmin,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 4] = [
        Role::Guest,
        Role::HotelEmployee,
        Role::VendorAdmin,
        Role::SystemAdmin,
    ];

    /// The JSON and database spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::HotelEmployee => "hotel_employee",
            Role::VendorAdmin => "vendor_admin",
            Role::SystemAdmin => "system_admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
