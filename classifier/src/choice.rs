//! Fieldless enums chosen by name on the command line: one table gives the name of each
//! variant, parsing (with an error that lists the accepted names) and display.

/// Implements `name()`, `FromStr` and `Display` for a fieldless enum from a table of
/// `Variant => "name"` pairs; `$flag` names the option in parse errors.
macro_rules! named_choices {
    ($ty:ident, $flag:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// The name used on the command line and in messages.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> $crate::error::Result<$ty> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::error::Error::invalid(
                        $flag,
                        s,
                        format!("one of {}", [$($name),+].join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use named_choices;
