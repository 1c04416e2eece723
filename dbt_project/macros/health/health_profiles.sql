{#- Health profiles (issue 21; vars health_profile_by, health_profiles; doc block
    health_profiles): an account is scored with the weights and status bands of its profile,
    anything the profile leaves out falls back to the defaults (health_weights,
    health_healthy_min_score, health_at_risk_min_score). These macros only shape SQL. -#}

{#- The values var health_profile_by may pick a profile by, per column. Not the tier, nor
    anything else that reads tonight's health: the tier rules read health status. -#}
{% macro health_profile_keys() -%}
    {{ return({
        'adoption_stage': ['early', 'growth', 'mature'],
        'value_band': ['Enterprise', 'Mid-market', 'SMB'],
        'none': [],
    }) }}
{%- endmacro %}

{#- The configured profiles, checked: a known health_profile_by, profile names it can take,
    and weights (when given) for exactly the five components. -#}
{% macro health_profiles_checked() -%}
    {%- set by = var('health_profile_by') -%}
    {%- set keys = health_profile_keys() -%}
    {%- if by not in keys -%}
        {{ exceptions.raise_compiler_error("var health_profile_by must be one of " ~ (keys.keys() | list | join(', ')) ~ ", got " ~ by) }}
    {%- endif -%}
    {%- set profiles = var('health_profiles') or {} -%}
    {%- if by == 'none' -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set components = var('health_weights').keys() | list | sort -%}
    {%- for name, profile in profiles.items() -%}
        {%- if name not in keys[by] -%}
            {{ exceptions.raise_compiler_error("var health_profiles: profile '" ~ name ~ "' is not a value of " ~ by ~ " (" ~ (keys[by] | join(', ')) ~ ")") }}
        {%- endif -%}
        {%- set weights = (profile or {}).get('weights') -%}
        {%- if weights is not none and (weights.keys() | list | sort) != components -%}
            {{ exceptions.raise_compiler_error("var health_profiles: profile '" ~ name ~ "' must give weights for exactly " ~ (components | join(', ')) ~ ", got " ~ (weights.keys() | list | sort | join(', '))) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(profiles) }}
{%- endmacro %}

{#- A SQL expression: the profile's value of `setting` (or, with `component`, of that
    component's weight) for the profile named by `profile_sql`, else `default`. -#}
{% macro health_profile_value(profile_sql, setting, default, component=none) -%}
    {%- set overrides = [] -%}
    {%- for name, profile in health_profiles_checked().items() -%}
        {%- set value = ((profile or {}).get('weights') or {}).get(component) if component else (profile or {}).get(setting) -%}
        {%- if value is not none -%}{%- do overrides.append([name, value]) -%}{%- endif -%}
    {%- endfor -%}
    {%- if overrides | length == 0 -%}
        {{ default }}
    {%- else -%}
        (case {{ profile_sql }}{% for pair in overrides %} when '{{ pair[0] }}' then {{ pair[1] }}{% endfor %} else {{ default }} end)
    {%- endif -%}
{%- endmacro %}

{#- up / down / same from a score change: a change of at most var
    health_trend_same_max_points either way is "same"; null without a change. -#}
{% macro health_trend(change_sql) -%}
    case
        when {{ change_sql }} is null then null
        when {{ change_sql }} > {{ var('health_trend_same_max_points') }} then 'up'
        when {{ change_sql }} < -{{ var('health_trend_same_max_points') }} then 'down'
        else 'same'
    end
{%- endmacro %}
