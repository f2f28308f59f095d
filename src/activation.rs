//! Activation functions, with derivatives taken from the output.

use crate::error::{Error, Result};
use crate::float::{Float, sigmoid};
use ndarray::{ArrayViewMut2, Axis};

/// An activation function, as Keras names them.
///
/// Every activation here has a derivative that can be written in terms of its output `y`,
/// which is what the layers keep for the backward pass.
///
/// # Example
/// ```
/// use rnnkit::Activation;
/// assert_eq!("tanh".parse::<Activation>().unwrap(), Activation::Tanh);
/// assert_eq!(Activation::Relu.apply(-2.0f64), 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// `y = x` (Keras `"linear"` or `None`).
    #[default]
    Linear,
    /// `y = tanh(x)`.
    Tanh,
    /// `y = 1 / (1 + e^-x)`, the exact logistic.
    Sigmoid,
    /// `y = max(x, 0)`.
    Relu,
    /// Softmax over the last axis (Dense only).
    Softmax,
}

impl Activation {
    /// Keras's name for this activation.
    ///
    /// ```
    /// assert_eq!(rnnkit::Activation::Sigmoid.keras_name(), "sigmoid");
    /// ```
    pub fn keras_name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Softmax => "softmax",
        }
    }

    /// Applies an elementwise activation to one value (softmax is not elementwise and
    /// returns `x` unchanged here; use [`Activation::apply_rows`]).
    ///
    /// ```
    /// assert_eq!(rnnkit::Activation::Linear.apply(1.5f32), 1.5);
    /// ```
    #[inline]
    pub fn apply<F: Float>(self, x: F) -> F {
        match self {
            Activation::Linear | Activation::Softmax => x,
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::Relu => {
                if x > F::zero() {
                    x
                } else {
                    F::zero()
                }
            }
        }
    }

    /// Derivative `dy/dx` written in terms of the output `y` (elementwise activations).
    ///
    /// ```
    /// use rnnkit::Activation;
    /// let y = Activation::Tanh.apply(0.3f64);
    /// assert!((Activation::Tanh.derivative_from_output(y) - (1.0 - y * y)).abs() < 1e-15);
    /// ```
    #[inline]
    pub fn derivative_from_output<F: Float>(self, y: F) -> F {
        match self {
            Activation::Linear | Activation::Softmax => F::one(),
            Activation::Tanh => F::one() - y * y,
            Activation::Sigmoid => y * (F::one() - y),
            Activation::Relu => {
                if y > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
        }
    }

    /// Applies an elementwise activation in place to a slice, in one pass (the cells'
    /// hot path: tanh and sigmoid vectorise, `f64` within 1e-15 relative of libm).
    ///
    /// ```
    /// let mut v = [-1.0f64, 2.0];
    /// rnnkit::Activation::Relu.apply_slice(&mut v);
    /// assert_eq!(v, [0.0, 2.0]);
    /// ```
    #[inline]
    pub fn apply_slice<F: Float>(self, v: &mut [F]) {
        match self {
            Activation::Linear | Activation::Softmax => {}
            Activation::Tanh => F::tanh_slice(v),
            Activation::Sigmoid => F::sigmoid_slice(v),
            Activation::Relu => {
                for x in v {
                    *x = x.max(F::zero());
                }
            }
        }
    }

    /// Applies the activation in place to every row of `z` (softmax over each row).
    ///
    /// ```
    /// use rnnkit::ndarray::array;
    /// let mut z = array![[0.0f64, 0.0]];
    /// rnnkit::Activation::Softmax.apply_rows(z.view_mut());
    /// assert_eq!(z, array![[0.5, 0.5]]);
    /// ```
    pub fn apply_rows<F: Float>(self, mut z: ArrayViewMut2<F>) {
        match self {
            Activation::Linear => {}
            Activation::Softmax => {
                for mut row in z.axis_iter_mut(Axis(0)) {
                    let max = row.fold(F::neg_infinity(), |m, &v| if v > m { v } else { m });
                    let mut sum = F::zero();
                    row.mapv_inplace(|v| {
                        let e = (v - max).exp();
                        sum += e;
                        e
                    });
                    row.mapv_inplace(|v| v / sum);
                }
            }
            _ => match z.as_slice_mut() {
                Some(s) => self.apply_slice(s),
                None => z.mapv_inplace(|v| self.apply(v)),
            },
        }
    }

    /// Rejects activations a recurrent layer cannot use (softmax).
    pub(crate) fn check_elementwise(self, layer: &str, field: &'static str) -> Result<()> {
        if self == Activation::Softmax {
            return Err(Error::Config {
                layer: layer.to_string(),
                field,
                reason: "expected one of linear, tanh, sigmoid, relu; got softmax".into(),
            });
        }
        Ok(())
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;

    /// Parses a Keras activation name (`"linear"`, `"tanh"`, `"sigmoid"`, `"relu"`,
    /// `"softmax"`; `"None"` and `""` mean linear, as `activation=None` does in Keras).
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "linear" | "None" | "none" | "" => Activation::Linear,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "relu" => Activation::Relu,
            "softmax" => Activation::Softmax,
            other => {
                return Err(Error::Config {
                    layer: "activation".into(),
                    field: "activation",
                    reason: format!(
                        "expected one of linear, tanh, sigmoid, relu, softmax; got {other:?}"
                    ),
                });
            }
        })
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keras_name())
    }
}

/// A derivative-from-output known at compile time, so the cells' backward loops vectorise
/// instead of matching on the activation at every element.
pub(crate) trait Deriv<F: Float>: Copy {
    /// `dy/dx` from `y`.
    fn d(self, y: F) -> F;
}

/// `1 - y²`.
#[derive(Clone, Copy)]
pub(crate) struct TanhD;
/// `y (1 - y)`.
#[derive(Clone, Copy)]
pub(crate) struct SigmoidD;
/// Any activation, chosen at run time.
#[derive(Clone, Copy)]
pub(crate) struct AnyD(pub Activation);

impl<F: Float> Deriv<F> for TanhD {
    #[inline(always)]
    fn d(self, y: F) -> F {
        F::one() - y * y
    }
}
impl<F: Float> Deriv<F> for SigmoidD {
    #[inline(always)]
    fn d(self, y: F) -> F {
        y * (F::one() - y)
    }
}
impl<F: Float> Deriv<F> for AnyD {
    #[inline(always)]
    fn d(self, y: F) -> F {
        self.0.derivative_from_output(y)
    }
}

/// Runs `$body` with `$a` (and `$r`) bound to compile-time derivatives of the activations
/// `$act` (and `$ract`): Keras's defaults (tanh, and sigmoid for gates) get their own
/// specialised loop, anything else the general one.
macro_rules! with_derivatives {
    ($act:expr, |$a:ident| $body:expr) => {
        match $act {
            $crate::activation::Activation::Tanh => {
                let $a = $crate::activation::TanhD;
                $body
            }
            other => {
                let $a = $crate::activation::AnyD(other);
                $body
            }
        }
    };
    ($act:expr, $ract:expr, |$a:ident, $r:ident| $body:expr) => {
        match ($act, $ract) {
            ($crate::activation::Activation::Tanh, $crate::activation::Activation::Sigmoid) => {
                let ($a, $r) = ($crate::activation::TanhD, $crate::activation::SigmoidD);
                $body
            }
            (act, ract) => {
                let ($a, $r) = (
                    $crate::activation::AnyD(act),
                    $crate::activation::AnyD(ract),
                );
                $body
            }
        }
    };
}
pub(crate) use with_derivatives;

impl serde::Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.keras_name())
    }
}

impl<'de> serde::Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
